package pipeline

import (
	"context"
	"io"
	"time"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/foundation"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Image names, in the order the summary lists them.
const (
	ImageLHCbDIRAC   = "lhcbdirac"
	ImagePinger      = "pinger"
	ImageMesosSlave  = "mesos-slave"
	ImageRegistrator = "registrator"
)

// ImageNames lists the release's images.
var ImageNames = []string{ImageLHCbDIRAC, ImagePinger, ImageMesosSlave, ImageRegistrator}

// Image is one image of the release and what happened to it.
type Image struct {
	Name      string
	Container *dagger.Container
	BuildTime time.Duration
	Smoke     string // "passed (6 services)", "failed: …", "not run"
	Pushed    push.Pushed
}

// Release is one run of the release: its configuration, its connection,
// and what each stage hands to the next.
type Release struct {
	Config  Config
	F       *foundation.Foundation
	P       *progress.Reporter
	Out     io.Writer // the deploy plan, testService's logs
	Deploy  *client.Client
	DeployO deploy.Options

	Lock    *lhcbdirac.Lock // what the lhcbdirac image installs (nil on the FIXTURE route)
	Apps    []render.App
	Images  map[string]*Image
	Sources []sources.Source
	Smoke   []lhcbdirac.SmokeResult
	Written []string // app definition files
	Pushed  bool
	// Deployed says what the deploy stage did (or why it did not).
	Deployed string

	// UVCache names the cache volume of the lhcbdirac build's downloads
	// ("" for the default; a new name is a build from an empty cache).
	UVCache string
	// Rerun makes Dagger build again rather than reuse its cache.
	Rerun string

	builder     *gobuild.Builder
	toolsBase   string
	builderBase string
	mariadbBase string
	etcdBase    string
	lbase       string
	mbase       string
}

// Stages is the release, in order: inputs → build → smoke → push → render → deploy.
func (r *Release) Stages() []Stage {
	return []Stage{inputsStage{r}, buildStage{r}, smokeStage{r}, pushStage{r}, renderStage{r}, deployStage{r}}
}

// Run runs every stage and writes the summary (also on failure: it says
// which image got how far).
func (r *Release) Run(ctx context.Context) error {
	r.Images = map[string]*Image{}
	for _, n := range ImageNames {
		r.Images[n] = &Image{Name: n, Smoke: "not run"}
	}
	err := Run(ctx, r.P, r.Stages()...)
	r.WriteSummary(r.Out)
	if werr := r.saveSummary(); werr != nil && err == nil {
		err = werr
	}
	return err
}
