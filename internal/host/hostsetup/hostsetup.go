// Package hostsetup makes a fresh machine able to run the pipeline: it
// installs what the pipeline stands on from Debian's packages (Docker,
// debootstrap, git, …) and starts the Docker daemon in the background, so
// that the README's two commands work as the first ones typed. It never
// reports success while the daemon does not answer.
//
// Where it may not act — not root, no apt-get, or LHCBDIRAC_NO_HOST_SETUP=1
// — it stops at once and prints the exact commands to run instead.
package hostsetup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// DisableEnv turns provisioning off: the host is only checked.
const DisableEnv = "LHCBDIRAC_NO_HOST_SETUP"

// Need is a command the pipeline runs on the host and the Debian package
// that provides it.
type Need struct {
	Command, Package, Why string
	// Probe, when set, must also succeed (the command exists, but a part
	// of it may be packaged apart, as Python's venv is on Debian).
	Probe []string
}

// Needs are what the pipeline runs on the host.
var Needs = []Need{
	{"docker", "docker.io", "the Docker CLI: the engine and the registry run in containers", nil},
	{"dockerd", "docker.io", "the Docker daemon", nil},
	{"debootstrap", "debootstrap", "the Debian bases of the images", nil},
	{"git", "git", "hotfix sources and the FIXTURE repositories", nil},
	{"openssl", "openssl", "the tests compare the CA directory's hashes with OpenSSL's", nil},
	{"python3", "python3-venv", "a virtual environment for uv, which resolves the LHCbDIRAC lock",
		[]string{"sh", "-c", `p=/usr/bin/python3; [ -x $p ] || p=python3; $p -c "import ensurepip, venv"`}},
}

// TestNeeds are what the tests run beyond the pipeline's own needs: the
// real parts the discovery and monitoring tests stand on.
var TestNeeds = []Need{
	{"etcd", "etcd-server", "etcd for the discovery tests (the registrator, dirac-discover)", nil},
	{"influxd", "influxdb", "InfluxDB 1.x for the monitoring tests (the collector, metrics:report)", nil},
	{"chromium", "chromium", "a real browser for the release report's tests (headless, internal/testlib/chromiumtest)", nil},
}

// Host is the machine being set up. Its fields default to the real
// machine; tests replace them.
type Host struct {
	// NoSetup is LHCBDIRAC_NO_HOST_SETUP=1: never install or start
	// anything, only check and explain.
	NoSetup  bool
	LookPath func(string) (string, error)
	EUID     int
	// DockerAnswers reports whether the Docker daemon answers.
	DockerAnswers func(ctx context.Context) error
	// StartTimeout bounds the wait for a started dockerd to answer.
	StartTimeout time.Duration
	// LogDir receives dockerd.log (default: the pipeline's cache directory).
	LogDir string
	// Extra are needs beyond Needs (TestNeeds for `mage test`).
	Extra []Need
}

// Real is this machine; noSetup is LHCBDIRAC_NO_HOST_SETUP.
func Real(noSetup bool) Host {
	return Host{NoSetup: noSetup, LookPath: exec.LookPath, EUID: os.Geteuid(), DockerAnswers: dockerAnswers, StartTimeout: 60 * time.Second}
}

// ForTests is h with the tests' needs too.
func (h Host) ForTests() Host {
	h.Extra = TestNeeds
	return h
}

func (h Host) needs() []Need { return append(append([]Need(nil), Needs...), h.Extra...) }

// Ensure installs what is missing and starts dockerd when no daemon
// answers. It prints one progress line per step and says which packages it
// installed.
func (h Host) Ensure(ctx context.Context, p *progress.Reporter) error {
	missing := h.missingPackages()
	daemonErr := error(nil)
	if len(missing) == 0 {
		if daemonErr = h.DockerAnswers(ctx); daemonErr == nil {
			return nil // the common case: nothing to do, nothing printed
		}
	}
	if why := h.cannotAct(); why != "" {
		return h.explain(why, missing, daemonErr)
	}
	if len(missing) > 0 {
		p.Infof("host: missing %s", h.missingCommands())
		step := p.Start("host: installing %s (apt-get)", strings.Join(missing, " "))
		if err := aptInstall(ctx, missing); err != nil {
			return step.Fail(fmt.Errorf("installing %s: %w", strings.Join(missing, " "), err))
		}
		if still := h.missingPackages(); len(still) > 0 {
			return step.Fail(fmt.Errorf("apt-get installed %s, yet %s are still not on PATH", strings.Join(missing, " "), h.missingCommands()))
		}
		step.Done()
		p.Infof("installed Debian packages: %s", strings.Join(missing, " "))
	}
	if err := h.DockerAnswers(ctx); err == nil {
		return nil
	}
	return h.startDockerd(ctx, p)
}

// cannotAct says why provisioning may not run here ("" when it may).
func (h Host) cannotAct() string {
	switch {
	case h.NoSetup:
		return DisableEnv + "=1 is set"
	case h.EUID != 0:
		return "not running as root"
	}
	if _, err := h.LookPath("apt-get"); err != nil {
		return "apt-get is not available (not a Debian-like machine)"
	}
	return ""
}

// explain is the error for a host the pipeline may not set up: what is
// missing and the exact commands that fix it.
func (h Host) explain(why string, missing []string, daemonErr error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "this machine is not ready for the pipeline, and it will not set it up (%s).\n", why)
	if len(missing) > 0 {
		fmt.Fprintf(&b, "Missing commands: %s.\n", h.missingCommands())
	}
	if daemonErr != nil {
		fmt.Fprintf(&b, "The Docker daemon does not answer: %v.\n", daemonErr)
	}
	b.WriteString("Run, as root:\n")
	if len(missing) > 0 {
		fmt.Fprintf(&b, "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y %s\n", strings.Join(missing, " "))
	}
	b.WriteString("  nohup dockerd >/var/log/dockerd.log 2>&1 &   # or: systemctl start docker\n")
	b.WriteString("then run the command again")
	if h.NoSetup {
		b.WriteString(" (or unset " + DisableEnv + " to let the pipeline do this itself)")
	}
	return errors.New(b.String())
}

func (h Host) missing(n Need) bool {
	if _, err := h.LookPath(n.Command); err != nil {
		return true
	}
	return n.Probe != nil && exec.Command(n.Probe[0], n.Probe[1:]...).Run() != nil
}

func (h Host) missingPackages() []string {
	var pkgs []string
	for _, n := range h.needs() {
		if h.missing(n) && !contains(pkgs, n.Package) {
			pkgs = append(pkgs, n.Package)
		}
	}
	return pkgs
}

func (h Host) missingCommands() string {
	var cmds []string
	for _, n := range h.needs() {
		if h.missing(n) {
			cmds = append(cmds, n.Command+" ("+n.Why+")")
		}
	}
	return strings.Join(cmds, ", ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func aptInstall(ctx context.Context, pkgs []string) error {
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, pkgs...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %v: %s", args[0], err, lines.Tail(out.String(), 15))
		}
	}
	return nil
}

// startDockerd starts the daemon in its own session (it outlives this
// process, as a service would) and waits until it answers.
func (h Host) startDockerd(ctx context.Context, p *progress.Reporter) error {
	dir := h.LogDir
	if dir == "" {
		var err error
		if dir, err = cachedir.Dir(); err != nil {
			return err
		}
	}
	logPath := filepath.Join(dir, "dockerd.log")
	step := p.Start("host: starting dockerd in the background (log: %s)", logPath)
	bin, err := h.LookPath("dockerd")
	if err != nil {
		return step.Fail(fmt.Errorf("dockerd is not on PATH: %w", err))
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return step.Fail(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return step.Fail(fmt.Errorf("starting dockerd: %w", err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(h.StartTimeout)
	var last error
	for time.Now().Before(deadline) {
		if last = h.DockerAnswers(ctx); last == nil {
			step.Done()
			return nil
		}
		select {
		case err := <-exited:
			return step.Fail(fmt.Errorf("dockerd exited (%v) before it answered; the last lines of %s:\n%s", err, logPath, lines.Tail(readFile(logPath), 20)))
		case <-ctx.Done():
			return step.Fail(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	return step.Fail(fmt.Errorf("dockerd was started but does not answer after %s (%v); the last lines of %s:\n%s", h.StartTimeout, last, logPath, lines.Tail(readFile(logPath), 20)))
}

func dockerAnswers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s", lines.Tail(strings.TrimSpace(string(out))+" "+err.Error(), 1))
	}
	return nil
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
