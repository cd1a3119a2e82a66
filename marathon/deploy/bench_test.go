package deploy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/marathontest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

func manyServices(n int) *services.File {
	f := &services.File{Path: "bench.yaml", Image: "registry.example.org/lhcb-dirac/lhcbdirac", PingerURL: "http://lbdiracgw:1234",
		Environments: map[string]services.Environment{"production": {DiracCfg: "/etc/dirac/LHCb-Production.cfg", GridSecurity: "/etc/grid-security", System: "prod"}}}
	for i := 0; i < n; i++ {
		f.Services = append(f.Services, services.Service{Name: fmt.Sprintf("System%d/Service%d", i/10, i), Port: 9000 + i})
	}
	return f
}

// BenchmarkRenderAndValidate500: render 500 services with the default
// template and validate each against the app schema (target ≤ 200 ms).
func BenchmarkRenderAndValidate500(b *testing.B) {
	f := manyServices(500)
	r, err := render.New("", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		apps, err := r.Render(f, "production", "v9.1")
		if err != nil || len(apps) != 500 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/500-services")
}

// BenchmarkDeploy50: deploy 50 new apps to the Marathon test server, waiting
// for each to be healthy (the test server takes 30 ms to start an app).
func BenchmarkDeploy50(b *testing.B) {
	r, err := render.New("", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer() // only Apply is timed
	for i := range b.N {
		apps, err := r.Render(manyServices(50), "production", fmt.Sprintf("v9.%d", i))
		if err != nil {
			b.Fatal(err)
		}
		_, c, o, _ := setup(b)
		o.Poll = 20 * time.Millisecond
		o.Timeout = time.Minute
		b.StartTimer()
		if _, err := Apply(context.Background(), c, apps, o); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
}

// BenchmarkPlanAndDeployEveryService: the 70 apps of the full 12.0.21
// release (services:all's file) planned, then deployed until healthy, on a
// new STAND-IN Marathon each time (30 ms to start an app); apps/s of each.
func BenchmarkPlanAndDeployEveryService(b *testing.B) {
	apps := renderAllServices(b, "v12.0.21")
	var planned, deployed time.Duration
	for range b.N {
		srv, c, o, _ := setup(b)
		srv.Behaviour = func(map[string]any) marathontest.Outcome {
			return marathontest.Outcome{Healthy: true, Delay: 30 * time.Millisecond}
		}
		o.Timeout = time.Minute
		start := time.Now()
		if _, err := Plan(context.Background(), c, apps); err != nil {
			b.Fatal(err)
		}
		planned += time.Since(start)
		start = time.Now()
		if _, err := Apply(context.Background(), c, apps, o); err != nil {
			b.Fatal(err)
		}
		deployed += time.Since(start)
	}
	n := float64(len(apps) * b.N)
	b.ReportMetric(n/planned.Seconds(), "apps/s-planned")
	b.ReportMetric(n/deployed.Seconds(), "apps/s-deployed")
}
