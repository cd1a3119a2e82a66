package slaveinit

import "strings"

// knownFlags are Mesos agent flags an operator commonly sets; they are only
// used to spot near misses, so the list need not be complete.
var knownFlags = []string{
	"master", "work_dir", "log_dir", "hostname", "ip", "port", "containerizers", "docker",
	"docker_sandbox_directory", "docker_socket", "docker_stop_timeout", "executor_registration_timeout",
	"registration_backoff_factor", "attributes", "resources", "isolation", "logging_level",
	"executor_shutdown_grace_period", "gc_delay", "credential", "default_role", "switch_user",
	"strict", "recover", "hostname_lookup", "advertise_ip", "advertise_port", "docker_registry",
	"image_providers", "launcher_dir", "modules", "cgroups_root", "systemd_enable_support",
}

// nearMiss returns the known flag that name probably meant: the same letters
// with other underscores, or one edit away. "" when name is a known flag or
// nothing is close.
func nearMiss(name string) string {
	for _, f := range knownFlags {
		if f == name {
			return ""
		}
	}
	bare := strings.ReplaceAll(name, "_", "")
	for _, f := range knownFlags {
		if strings.ReplaceAll(f, "_", "") == bare || (len(name) > 4 && editDistance(f, name) == 1) {
			return f
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each count one, so a
// typo like "mastre" is one edit from "master".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
