package registrator

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/runspec"
)

// SmokeTasks is how many tasks the STAND-IN Marathon runs
// (standin-marathon: two file catalogs, one request proxy).
const SmokeTasks = 3

// checkScript waits (at most 60 s) until the registrator answers /healthz
// and etcd holds an entry for every task, then prints both.
const checkScript = `i=0
while [ "$i" -lt 60 ]; do
  if curl -fsS "$REGISTRATOR/healthz" >/dev/null 2>&1; then
    n=$(etcdctl --endpoints http://etcd:2379 get --prefix --keys-only "$KEYS" | grep -c . || true)
    [ "$n" -ge "$WANT" ] && break
  fi
  i=$((i+1)); sleep 1
done
echo "--- healthz"; curl -sS "$REGISTRATOR/healthz"
echo "--- etcd"; etcdctl --endpoints http://etcd:2379 get --prefix "$KEYS"
`

// Smoke runs the image as Marathon would run its rendered app (the run
// spec), with the STAND-IN Marathon and a real etcd (Debian's) in place
// of the app's: the registrator must become healthy and write an entry
// for each of the stand-in's tasks. Consul is left out here (the Go tests
// run a real agent). It returns the check's output.
func Smoke(ctx context.Context, c *dagger.Client, img *dagger.Container, app render.App, b *gobuild.Builder, toolsBase, etcdBase string) (string, error) {
	spec, err := runspec.FromApp(app.JSON, runspec.Options{Host: "smoke-agent"})
	if err != nil {
		return "", fmt.Errorf("registrator app: %w", err)
	}
	if len(spec.Ports) == 0 {
		return "", fmt.Errorf("registrator app %s: no port for /healthz", app.ID)
	}
	port := spec.Ports[0].HostPort
	marathon := c.Container().From(toolsBase).
		WithFile("/usr/local/bin/standin-marathon", b.Binary("./images/registrator/standin-marathon")).
		WithExposedPort(8080).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"/usr/local/bin/standin-marathon"}})
	etcd := c.Container().From(etcdBase).
		WithExposedPort(2379).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"etcd", "--data-dir", "/tmp/etcd",
			"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://etcd:2379"}})

	// The app's environment, with the stand-ins where it names the real
	// Marathon, etcd and Consul; an empty file for the host's credentials.
	ctr := img.WithServiceBinding("marathon", marathon).WithServiceBinding("etcd", etcd)
	for _, kv := range spec.EnvList() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "MARATHON_URL":
			v = "http://marathon:8080"
		case "ETCD_ENDPOINTS":
			v = "http://etcd:2379"
		case "CONSUL_HTTP_ADDR":
			continue
		}
		ctr = ctr.WithEnvVariable(k, v)
	}
	for _, m := range spec.Mounts {
		ctr = ctr.WithNewFile(m.ContainerPath, "# smoke test: no credentials\n")
	}
	prefix := spec.Env["ETCD_PREFIX"]
	if prefix == "" {
		prefix = entry.DefaultPrefix
	}
	svc := ctr.WithExposedPort(port).AsService(dagger.ContainerAsServiceOpts{UseEntrypoint: true, Args: spec.Args})
	out, err := c.Container().From(etcdBase).
		WithServiceBinding("registrator", svc).
		WithServiceBinding("etcd", etcd).
		WithEnvVariable("REGISTRATOR", "http://registrator:"+strconv.Itoa(port)).
		WithEnvVariable("KEYS", entry.AppsKey(prefix)).
		WithEnvVariable("WANT", strconv.Itoa(SmokeTasks)).
		WithEnvVariable("ETCDCTL_API", "3").
		WithExec([]string{"/bin/sh", "-c", checkScript}).
		Stdout(ctx)
	if err != nil {
		return out, err
	}
	health, entries, _ := strings.Cut(out, "--- etcd")
	if !strings.Contains(health, "ok") {
		return out, fmt.Errorf("the registrator is not healthy:\n%s", out)
	}
	if n := strings.Count(entries, `"task":`); n != SmokeTasks {
		return out, fmt.Errorf("etcd holds %d entries, want one for each of the STAND-IN's %d tasks:\n%s", n, SmokeTasks, out)
	}
	return out, nil
}
