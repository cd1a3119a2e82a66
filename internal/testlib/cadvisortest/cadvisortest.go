// Package cadvisortest runs a real cAdvisor for tests: built from its Go
// module (tools/cadvisor; Debian does not ship it) and run on the host,
// where it watches the machine's Docker, its API on a loopback port.
package cadvisortest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/testtools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
)

// Build compiles it (once per tools module; testtools.CAdvisor) and returns its path.
func Build(ctx context.Context, p *progress.Reporter) (string, error) {
	return testtools.CAdvisor.Build(ctx, p)
}

// CAdvisor is one running cAdvisor.
type CAdvisor struct {
	Addr string // 127.0.0.1:<port>
	proc *testproc.Proc
}

// Start runs cAdvisor until the test ends, sampling every second (always:
// without dynamic housekeeping, which stretches an idle container's
// interval up to a minute, so tests wait for samples by count in bounded
// time), with the Marathon variables of containers' environments in their
// specs.
func Start(t testing.TB) *CAdvisor {
	t.Helper()
	bin, err := Build(context.Background(), progress.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	c := &CAdvisor{}
	c.proc, _ = testproc.StartOnPorts(t, 1, func(ports []int) testproc.Spec {
		c.Addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		return testproc.Spec{Name: "cadvisor", Path: bin, Timeout: 60 * time.Second, Ready: c.healthy,
			Args: []string{"-listen_ip", "127.0.0.1", "-port", fmt.Sprint(ports[0]), "-logtostderr",
				"-housekeeping_interval", "1s", "-allow_dynamic_housekeeping=false", "-docker_env_metadata_whitelist", "MARATHON_APP_ID,MESOS_TASK_ID",
				"-disable_metrics", "disk,diskIO,tcp,udp,percpu,sched,process"}}
	})
	return c
}

func (c *CAdvisor) healthy() bool {
	resp, err := testproc.Get("http://" + c.Addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// Log is cAdvisor's output so far.
func (c *CAdvisor) Log() string { return c.proc.Log() }
