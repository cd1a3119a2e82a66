// Package shellenv reads environments the way a POSIX shell would build
// them: os.Environ() as a map, and the environment a sourced file leaves
// behind. Both images' entry programs need it (the lhcbdirac entrypoint
// sources DIRAC's bashrc, the mesos-slave init sources ENVIRONMENT_INIT).
package shellenv

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
)

// Environ turns os.Environ() into a map.
func Environ(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Source has POSIX sh source the file (its path passed as an argument,
// never spliced into the script) in env and returns the resulting
// environment, read NUL-separated.
func Source(ctx context.Context, path string, env map[string]string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `set -a; . "$1" >&2 && env -0`, "sh", path)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("sourcing failed: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	res := map[string]string{}
	for _, kv := range strings.Split(out.String(), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" && k != "PWD" && k != "SHLVL" && k != "_" {
			res[k] = v
		}
	}
	return res, nil
}
