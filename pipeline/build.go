package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	mesosslave "github.com/lhcbdirac/lhcbdirac-pipeline/images/mesos-slave"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/registrator"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// The build stage: the four images, concurrently.

type buildStage struct{ r *Release }

func (buildStage) String() string { return "build" }

// Recipes returns the image recipes (not yet evaluated).
func (r *Release) Recipes() (map[string]*dagger.Container, error) {
	c := r.F.Client
	in, err := r.lhcbdiracInputs()
	if err != nil {
		return nil, err
	}
	r.builder.Rerun = r.Rerun
	return map[string]*dagger.Container{
		ImageLHCbDIRAC:   lhcbdirac.Recipe(c, r.builder, in),
		ImagePinger:      pinger.Recipe(c, r.builder, r.Config.Version.Raw),
		ImageMesosSlave:  mesosslave.Recipe(c, r.builder, mesosslave.Inputs{Base: r.mbase, Version: r.Config.Version, StandinAgent: r.Config.MesosSlaveBase == ""}),
		ImageRegistrator: registrator.Recipe(c, r.builder, r.Config.Version.Raw),
	}, nil
}

// lhcbdiracInputs are what the inputs stage found for the lhcbdirac image.
func (r *Release) lhcbdiracInputs() (lhcbdirac.Inputs, error) {
	c := r.F.Client
	in := lhcbdirac.Inputs{
		Base: r.lbase, BuilderBase: r.builderBase, Version: r.Config.Version,
		Lock: r.Lock, Sources: r.Sources, Rerun: r.Rerun, UVCache: r.UVCache,
	}
	switch inst := r.Config.Installer; {
	case inst == "":
	case isURL(inst):
		in.Installer, in.InstallerFrom = c.HTTP(inst), redact.URL(inst)
	default:
		// The label names the file, not this machine's path to it.
		in.Installer, in.InstallerFrom = c.Host().File(inst), "file:"+filepath.Base(inst)
	}
	if u := r.Config.PipIndexURL; u != "" {
		in.IndexURL, in.IndexShown = c.SetSecret("lhcbdirac-index-url", u), u
	}
	for _, s := range r.Sources {
		in.SourceDirs = append(in.SourceDirs, c.Host().Directory(s.Dir))
	}
	return in, in.Validate()
}

// isURL tells an installer to download from a path on this machine.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func (s buildStage) Run(ctx context.Context) error { return s.r.build(ctx, ImageNames...) }

// build evaluates the recipes of the named images concurrently, recording
// each image's container and build time.
func (r *Release) build(ctx context.Context, names ...string) error {
	ctrs, err := r.Recipes()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := r.P.Start("build %s", n)
			start := time.Now()
			ctr, err := ctrs[n].Sync(ctx)
			r.Images[n].BuildTime = time.Since(start)
			if err != nil {
				errs[i] = step.Fail(fmt.Errorf("building %s: %w", n, err))
				return
			}
			r.Images[n].Container = ctr
			step.Done()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
