package hostsetup

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// The tests run the real Ensure against a fake PATH: a directory holding
// only the commands a scenario has (sh and the coreutils the fakes use
// are linked in). The fake apt-get "installs" a package by writing the
// fake commands it provides; the fake docker answers only once a fake
// dockerd has written its socket marker.

func fakePath(t *testing.T, have ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, c := range []string{"sh", "touch", "sleep", "cat", "cp", "dirname"} {
		p, err := lookSystem(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(dir, c)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range have {
		writeFake(t, dir, c)
	}
	t.Setenv("PATH", dir)
	return dir
}

func lookSystem(c string) (string, error) {
	for _, d := range []string{"/usr/bin", "/bin"} {
		if _, err := os.Stat(filepath.Join(d, c)); err == nil {
			return filepath.Join(d, c), nil
		}
	}
	return "", os.ErrNotExist
}

// fake scripts by command
var fakes = map[string]string{
	"docker": `[ -e "$(dirname "$0")/dockerd.running" ] && { echo 28.2.2; exit 0; }
echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1`,
	"dockerd-ok":   `touch "$(dirname "$0")/dockerd.running"; echo started; sleep 30`,
	"dockerd-dies": `echo "failed to start daemon: cannot find cgroup mount" >&2; exit 1`,
	"debootstrap":  `exit 0`, "git": `exit 0`, "openssl": `exit 0`, "python3": `exit 0`,
	// apt-get install writes the fakes of what each package provides, and
	// logs its arguments.
	"apt-get": `d=$(dirname "$0"); echo "$@" >>"$d/apt.log"
[ "$1" = install ] || exit 0
for p in "$@"; do case $p in
  docker.io) cp "$d/.fake-docker" "$d/docker"; cp "$d/.fake-dockerd" "$d/dockerd";;
  debootstrap) cp "$d/.fake-debootstrap" "$d/debootstrap";;
  git) cp "$d/.fake-git" "$d/git";;
  openssl) cp "$d/.fake-openssl" "$d/openssl";;
  python3-venv) cp "$d/.fake-python3" "$d/python3";;
  etcd-server) cp "$d/.fake-etcd" "$d/etcd";;
  influxdb) cp "$d/.fake-etcd" "$d/influxd";;
  chromium) cp "$d/.fake-etcd" "$d/chromium";;
esac; done`,
}

func writeFake(t *testing.T, dir, name string) {
	t.Helper()
	body, ok := fakes[name]
	if !ok {
		t.Fatalf("no fake %s", name)
	}
	target := name
	if strings.HasPrefix(name, "dockerd-") {
		target = "dockerd"
	}
	if err := os.WriteFile(filepath.Join(dir, target), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// stage puts the fakes apt-get will copy into place.
func stage(t *testing.T, dir, dockerd string) {
	t.Helper()
	for _, c := range []string{"docker", "debootstrap", "git", "openssl", "python3", dockerd} {
		name := c
		if strings.HasPrefix(c, "dockerd-") {
			name = "dockerd"
		}
		body := "#!/bin/sh\n" + fakes[c] + "\n"
		if err := os.WriteFile(filepath.Join(dir, ".fake-"+name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func host(t *testing.T) Host {
	h := Real(false)
	h.StartTimeout = 5 * time.Second
	h.LogDir = t.TempDir()
	return h
}

func TestFreshMachineGetsPackagesAndDaemon(t *testing.T) {
	dir := fakePath(t, "apt-get")
	stage(t, dir, "dockerd-ok")
	var out bytes.Buffer
	if err := host(t).Ensure(t.Context(), progress.New(&out)); err != nil {
		t.Fatalf("Ensure: %v\n%s", err, out.String())
	}
	apt, _ := os.ReadFile(filepath.Join(dir, "apt.log"))
	if !strings.Contains(string(apt), "install -y -qq docker.io debootstrap git openssl python3-venv") {
		t.Fatalf("apt-get was called with:\n%s", apt)
	}
	for _, want := range []string{"host: installing docker.io debootstrap git openssl python3-venv", "installed Debian packages: docker.io debootstrap git openssl python3-venv", "host: starting dockerd in the background", "✓ host: starting dockerd"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
}

// The tests' needs come on top: etcd from Debian's etcd-server, InfluxDB,
// chromium for the report's browser tests; nothing else reinstalled.
func TestTestNeedsAreInstalledToo(t *testing.T) {
	dir := fakePath(t, "apt-get", "docker", "debootstrap", "git", "openssl", "python3", "dockerd-ok")
	os.WriteFile(filepath.Join(dir, "dockerd.running"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, ".fake-etcd"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	h := host(t)
	h.Extra = TestNeeds
	var out bytes.Buffer
	if err := h.Ensure(t.Context(), progress.New(&out)); err != nil {
		t.Fatalf("Ensure: %v\n%s", err, out.String())
	}
	apt, _ := os.ReadFile(filepath.Join(dir, "apt.log"))
	if !strings.Contains(string(apt), "install -y -qq etcd-server influxdb chromium\n") {
		t.Fatalf("apt-get was called with:\n%s", apt)
	}
}

func TestDaemonThatDiesIsAFailureWithItsLog(t *testing.T) {
	dir := fakePath(t, "apt-get", "docker", "debootstrap", "git", "openssl", "python3", "dockerd-dies")
	_ = dir
	var out bytes.Buffer
	err := host(t).Ensure(t.Context(), progress.New(&out))
	if err == nil || !strings.Contains(err.Error(), "dockerd exited") || !strings.Contains(err.Error(), "cannot find cgroup mount") {
		t.Fatalf("a dockerd that dies must fail with its log, got %v\n%s", err, out.String())
	}
}

func TestDaemonThatNeverAnswersIsAFailure(t *testing.T) {
	dir := fakePath(t, "apt-get", "docker", "debootstrap", "git", "openssl", "python3")
	// a dockerd that runs but never makes docker answer
	if err := os.WriteFile(filepath.Join(dir, "dockerd"), []byte("#!/bin/sh\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := host(t)
	h.StartTimeout = 1500 * time.Millisecond
	err := h.Ensure(t.Context(), progress.New(&bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "does not answer after") {
		t.Fatalf("got %v", err)
	}
}

func TestExplainsWhereItMayNotAct(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, h *Host)
		want  string
	}{
		{"disabled", func(t *testing.T, h *Host) { h.NoSetup = true }, DisableEnv + "=1 is set"},
		{"not root", func(t *testing.T, h *Host) { h.EUID = 1000 }, "not running as root"},
		{"no apt", func(t *testing.T, h *Host) { os.Remove(filepath.Join(settings.Read("PATH"), "apt-get")) }, "apt-get is not available"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := fakePath(t, "apt-get", "git", "python3")
			h := host(t)
			c.setup(t, &h)
			err := h.Ensure(t.Context(), progress.New(&bytes.Buffer{}))
			if err == nil {
				t.Fatal("Ensure reported success on a machine without Docker")
			}
			for _, want := range []string{c.want, "docker (the Docker CLI", "debootstrap (the Debian bases",
				"apt-get install -y docker.io debootstrap openssl", "nohup dockerd"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the explanation lacks %q:\n%v", want, err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "apt.log")); err == nil {
				t.Error("apt-get ran although provisioning may not act here")
			}
		})
	}
}

func TestNothingToDoPrintsNothing(t *testing.T) {
	dir := fakePath(t, "docker", "dockerd-ok", "debootstrap", "git", "openssl", "python3")
	if err := os.WriteFile(filepath.Join(dir, "dockerd.running"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := host(t).Ensure(t.Context(), progress.New(&out)); err != nil || out.Len() != 0 {
		t.Fatalf("a ready machine: err %v, output %q", err, out.String())
	}
}
