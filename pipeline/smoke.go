package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	mesosslave "github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/registrator"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// The smoke stage: every service as Marathon would run it, and the
// mesos-slave image under each ENVIRONMENT preset.

type smokeStage struct{ r *Release }

func (smokeStage) String() string { return "smoke" }

func (s smokeStage) Run(ctx context.Context) error {
	r := s.r
	services := render.Services(r.Apps)
	kit, err := lhcbdirac.NewKit(services)
	if err != nil {
		return err
	}
	client := r.F.Client.Container().From(r.toolsBase)
	imgs := lhcbdirac.SmokeImages{LHCbDIRAC: r.Images[ImageLHCbDIRAC].Container, Pinger: r.Images[ImagePinger].Container, Client: client}
	// The real services read their databases at start; the FIXTURE's
	// read none.
	if !r.Config.Fixture() && len(kit.DB.Databases) > 0 {
		if imgs.Database, err = lhcbdirac.MariaDB(ctx, r.F.Client, r.mariadbBase, imgs.LHCbDIRAC, kit); err != nil {
			return err
		}
		r.P.Infof("smoke database: MariaDB (Debian) with %s", strings.Join(kit.DB.Databases, ", "))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	sem := make(chan struct{}, 6) // mostly waiting for services to start
	for _, app := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			step := r.P.Start("smoke %s", app.Service.Name)
			res, err := lhcbdirac.Smoke(ctx, r.F.Client, imgs, app, kit, lhcbdirac.SmokeOptions{Fresh: r.Config.FreshSmoke})
			res.Err = err
			mu.Lock()
			defer mu.Unlock()
			r.Smoke = append(r.Smoke, res)
			if err != nil {
				errs = append(errs, step.Fail(err))
				return
			}
			step.Done()
		}()
	}
	var merr, rerr error
	var regApp *render.App
	for i := range r.Apps {
		if r.Apps[i].Kind == render.KindRegistrator {
			regApp = &r.Apps[i]
		}
	}
	if regApp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := r.P.Start("smoke registrator (STAND-IN Marathon, etcd)")
			if _, rerr = registrator.Smoke(ctx, r.F.Client, r.Images[ImageRegistrator].Container, *regApp, r.builder, r.toolsBase, r.etcdBase); rerr != nil {
				step.Fail(rerr)
			} else {
				step.Done()
			}
		}()
	}
	if r.Config.Only == "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := r.P.Start("smoke mesos-slave (%d ENVIRONMENT presets, watchdog)", len(mesosslave.SmokeEnvironments))
			_, merr = mesosslave.Smoke(ctx, r.F.Client, r.Images[ImageMesosSlave].Container, client)
			if merr != nil {
				step.Fail(merr)
			} else {
				step.Done()
			}
		}()
	}
	wg.Wait()
	sort.Slice(r.Smoke, func(i, j int) bool { return r.Smoke[i].Service < r.Smoke[j].Service })
	n := len(services)
	if len(errs) > 0 {
		r.Images[ImageLHCbDIRAC].Smoke = fmt.Sprintf("FAILED (%d of %d services)", len(errs), n)
		r.Images[ImagePinger].Smoke = "FAILED (see services)"
	} else {
		r.Images[ImageLHCbDIRAC].Smoke = fmt.Sprintf("passed (%s: health check + DIPS ping)", plural(n, "service"))
		r.Images[ImagePinger].Smoke = fmt.Sprintf("passed (%s)", plural(n, "ping"))
	}
	switch {
	case r.Config.Only != "":
		r.Images[ImageMesosSlave].Smoke = "not run (testService)"
	case merr != nil:
		r.Images[ImageMesosSlave].Smoke = "FAILED"
		errs = append(errs, merr)
	default:
		r.Images[ImageMesosSlave].Smoke = fmt.Sprintf("passed (%d presets, watchdog)", len(mesosslave.SmokeEnvironments))
	}
	switch {
	case regApp == nil && r.Config.Only != "":
		r.Images[ImageRegistrator].Smoke = "not run (testService)"
	case regApp == nil:
		r.Images[ImageRegistrator].Smoke = "not run (no discovery in the services file)"
	case rerr != nil:
		r.Images[ImageRegistrator].Smoke = "FAILED"
		errs = append(errs, rerr)
	default:
		r.Images[ImageRegistrator].Smoke = fmt.Sprintf("passed (%d tasks into etcd)", registrator.SmokeTasks)
	}
	return errors.Join(errs...)
}
