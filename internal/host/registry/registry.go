// Package registry runs the embedded OCI registry: Debian's docker-registry
// (the CNCF distribution server) in a Docker container on the host network,
// storing blobs and manifests in a named volume so pushed images survive a
// restart of the registry. The engine, which also runs on the host network,
// reaches it on loopback over plain HTTP.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Env names the registry the pipeline pushes to. Unset, the embedded one is
// started and used; set (host[:port][/prefix]), that registry is used as is.
const Env = "LHCBDIRAC_REGISTRY"

// Instance describes one embedded registry container.
type Instance struct {
	Name   string // container name
	Addr   string // host:port to listen on (loopback)
	Volume string // named volume holding the data
	// Extra docker run arguments (e.g. -e/-v for an auth-enabled test
	// instance); part of what makes a running instance "as asked".
	Extra []string
	// Ephemeral instances (a test's) are not restarted by the next
	// dockerd: once the run that started them is gone (killed, say), they
	// must not come back, maybe restarting forever on a removed mount.
	Ephemeral bool
}

// Embedded is the registry the release uses by default.
func Embedded() Instance {
	addr := engine.EmbeddedRegistryAddr()
	if addr == "127.0.0.1:5000" {
		return Instance{Name: "lhcbdirac-registry", Addr: addr, Volume: "lhcbdirac-registry-data"}
	}
	// Another address: a registry of its own, with its own data.
	port := addr[strings.LastIndex(addr, ":")+1:]
	return Instance{Name: "lhcbdirac-registry-" + port, Addr: addr, Volume: "lhcbdirac-registry-data-" + port}
}

var externalAddr atomic.Value

// UseExternal makes this process push to addr ($LHCBDIRAC_REGISTRY, read by
// the configuration boundary) instead of the embedded registry; "" goes
// back to the embedded one.
func UseExternal(addr string) { externalAddr.Store(strings.TrimSuffix(addr, "/")) }

// Address returns the registry to push to: the external one UseExternal
// gave, or the embedded one. isExternal reports which.
func Address() (addr string, isExternal bool) {
	if r, _ := externalAddr.Load().(string); r != "" {
		return r, true
	}
	return Embedded().Addr, false
}

// Up makes sure the registry the pipeline pushes to answers: for the embedded
// one, its container is started (or left running) and probed.
func Up(ctx context.Context, p *progress.Reporter) (string, error) {
	addr, external := Address()
	if external {
		p.Infof("registry: using %s=%s (nothing to start)", Env, addr)
		return addr, nil
	}
	image, err := hostimages.RegistryImage(ctx, p)
	if err != nil {
		return "", err
	}
	return addr, Start(ctx, p, Embedded(), image)
}

func (in Instance) runArgs(image string) []string {
	args := []string{
		"run", "-d", "--name", in.Name,
		"--network", "host",
		"--restart", in.restartPolicy(),
		"-v", in.Volume + ":/var/lib/docker-registry",
		"-e", "REGISTRY_HTTP_ADDR=" + in.Addr,
		"-e", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/var/lib/docker-registry",
		"-e", "REGISTRY_STORAGE_DELETE_ENABLED=true",
		"--label", "org.lhcbdirac.pipeline.registry-addr=" + in.Addr,
	}
	return append(append(args, in.Extra...), image)
}

// restartPolicy: the user's registry comes back with Docker, a test's not.
func (in Instance) restartPolicy() string {
	if in.Ephemeral {
		return "no"
	}
	return "unless-stopped"
}

// Start runs the instance from image unless it already runs as asked.
func Start(ctx context.Context, p *progress.Reporter, in Instance, image string) error {
	step := p.Start("registry %s on %s", in.Name, in.Addr)
	c, err := dockercli.InspectContainer(ctx, in.Name)
	switch {
	case err == nil && c.Running && c.Image == image && c.Labels["org.lhcbdirac.pipeline.registry-addr"] == in.Addr:
		if err := waitReady(ctx, in, 10*time.Second); err != nil {
			return step.Fail(err)
		}
		step.Cached()
		return nil
	case err == nil:
		if err := dockercli.RemoveContainer(ctx, in.Name); err != nil {
			return step.Fail(err)
		}
	case !errors.Is(err, dockercli.ErrNotFound):
		return step.Fail(err)
	}
	if _, err := dockercli.Run(ctx, in.runArgs(image)...); err != nil {
		return step.Fail(fmt.Errorf("starting registry %s: %w", in.Name, err))
	}
	return step.End(waitReady(ctx, in, 30*time.Second))
}

// Restart restarts the container (the data volume stays).
func Restart(ctx context.Context, in Instance) error {
	if _, err := dockercli.Run(ctx, "restart", in.Name); err != nil {
		return err
	}
	return waitReady(ctx, in, 30*time.Second)
}

// Down removes the container; with purge, its data volume too.
func Down(ctx context.Context, in Instance, purge bool) error {
	if err := dockercli.RemoveContainer(ctx, in.Name); err != nil {
		return err
	}
	if purge {
		if _, err := dockercli.Run(ctx, "volume", "rm", "-f", in.Volume); err != nil {
			return err
		}
	}
	return nil
}

// Status reports the registry without changing anything.
func Status(ctx context.Context) (string, error) {
	addr, external := Address()
	if external {
		return "external registry " + addr, nil
	}
	in := Embedded()
	c, err := dockercli.InspectContainer(ctx, in.Name)
	if errors.Is(err, dockercli.ErrNotFound) {
		return fmt.Sprintf("embedded registry %s: container %s does not exist (go run mage.go registry:up)", addr, in.Name), nil
	}
	if err != nil {
		return "", err
	}
	answer := "answers"
	if err := probe(ctx, addr); err != nil {
		answer = "does not answer: " + err.Error()
	}
	return fmt.Sprintf("embedded registry %s: container %s %s, volume %s, %s", addr, in.Name, c.Status, in.Volume, answer), nil
}

func waitReady(ctx context.Context, in Instance, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := probe(ctx, in.Addr)
		if err == nil {
			return nil
		}
		c, ierr := dockercli.InspectContainer(ctx, in.Name)
		if ierr == nil && !c.Running {
			return fmt.Errorf("registry container %s exited (code %d); its last log lines:\n%s", in.Name, c.ExitCode, dockercli.Logs(ctx, in.Name, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry %s does not answer on %s after %s (%v); is the port taken? set LHCBDIRAC_EMBEDDED_REGISTRY_ADDR. Last log lines:\n%s",
				in.Name, in.Addr, limit, err, dockercli.Logs(ctx, in.Name, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// probe asks the registry API's base endpoint, which answers 200 when up
// (401 when it wants credentials).
func probe(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	// 401 is an up registry asking for credentials (the API's own check).
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("GET /v2/ answered %s", resp.Status)
	}
	return nil
}
