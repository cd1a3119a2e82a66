// Package dockercli drives the Docker engine through the docker command, the
// one interface every machine with Docker has. The pipeline needs only a
// handful of calls (inspect, run, rm, load, logs), so the Docker SDK and its
// large dependency tree would buy nothing.
package dockercli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// ErrNotFound is returned by Inspect* when the object does not exist.
var ErrNotFound = errors.New("no such docker object")

// Check verifies that the docker CLI is installed and the daemon answers, and
// names the fix when either is not the case.
func Check(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("docker CLI not found on PATH: install Docker (on Debian: apt-get install docker.io)")
	}
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("the Docker daemon does not answer (%s): start it (systemctl start docker, or run dockerd in the background as root)", firstLine(out, err))
	}
	return nil
}

// Run runs docker with args and returns its standard output, trimmed. The
// error carries standard error, which is where docker explains itself.
func Run(ctx context.Context, args ...string) (string, error) {
	return RunInput(ctx, nil, args...)
}

// RunInput is Run with standard input.
func RunInput(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, stdin
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if isNotFound(msg) {
			return "", fmt.Errorf("docker %s: %w: %s", verb(args), ErrNotFound, msg)
		}
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("docker %s: %s", verb(args), msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Inspect returns one field (a Go template) of a container, image or volume.
func Inspect(ctx context.Context, kind, name, format string) (string, error) {
	return Run(ctx, kind, "inspect", "--format", format, name)
}

// Container is the part of a container's state the provisioning looks at.
type Container struct {
	Running  bool
	Status   string
	Image    string
	Labels   map[string]string
	ExitCode int
}

// InspectContainer returns the container's state or ErrNotFound.
func InspectContainer(ctx context.Context, name string) (Container, error) {
	// One call with a tab-separated template keeps the warm path fast.
	out, err := Inspect(ctx, "container", name,
		`{{.State.Running}}	{{.State.Status}}	{{.Config.Image}}	{{.State.ExitCode}}	{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}`)
	if err != nil {
		return Container{}, err
	}
	f := strings.SplitN(out, "\t", 5)
	if len(f) != 5 {
		return Container{}, fmt.Errorf("docker inspect %s: unexpected output %q", name, out)
	}
	c := Container{Running: f[0] == "true", Status: f[1], Image: f[2], Labels: map[string]string{}}
	fmt.Sscan(f[3], &c.ExitCode)
	for _, kv := range strings.Split(f[4], ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			c.Labels[k] = v
		}
	}
	return c, nil
}

// ImageExists reports whether a local image with this reference exists.
func ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := Inspect(ctx, "image", ref, "{{.Id}}")
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// RemoveContainer force-removes a container; a missing one is not an error.
func RemoveContainer(ctx context.Context, name string) error {
	_, err := Run(ctx, "rm", "-f", "-v", name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Logs returns the last n lines a container printed (both streams).
func Logs(ctx context.Context, name string, n int) string {
	out, err := exec.CommandContext(ctx, "docker", "logs", "--tail", fmt.Sprint(n), name).CombinedOutput()
	if err != nil && len(out) == 0 {
		return err.Error()
	}
	return strings.TrimRight(string(out), "\n")
}

func isNotFound(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "no such container") || strings.Contains(m, "no such image") ||
		strings.Contains(m, "no such object") || strings.Contains(m, "no such volume")
}

func verb(args []string) string {
	if len(args) == 0 {
		return ""
	}
	if len(args) > 1 && (args[0] == "container" || args[0] == "image" || args[0] == "volume") {
		return args[0] + " " + args[1]
	}
	return args[0]
}

func firstLine(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return err.Error()
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
