package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/deploy"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Promotion: the digests a release pushed, verified, deployed to another
// environment without rebuilding — with a canary first — and rolled back
// to the previous release on request.

// Promoted is what a promotion did.
type Promoted struct {
	Version     string
	Environment string
	Apps        []render.App
	Verified    []Verified
	Plan        []deploy.Change
	Result      deploy.CanaryResult
}

// releasedPins are the digests the version's tags name in the registry,
// for the images the apps run (lhcbdirac; the registrator with discovery):
// read from the registry, never from dist/.
func releasedPins(ctx context.Context, c Config) (map[string]string, error) {
	repos := []string{c.ImageRepo(images.LHCbDIRAC)}
	if c.Services.Discovery != nil {
		repos = append(repos, c.ImageRepo(images.Registrator))
	}
	pins := map[string]string{}
	var errs []error
	for _, repo := range repos {
		ref, err := name.NewTag(repo + ":" + c.Version.Raw)
		if err != nil {
			return nil, err
		}
		desc, err := remote.Head(ref, append(registryAuth(), remote.WithContext(ctx))...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (was %s released to this registry?)", ref, err, c.Version.Raw))
			continue
		}
		pins[repo] = c.Version.Raw + "@" + desc.Digest.String()
	}
	return pins, errors.Join(errs...)
}

// RunPromote is `mage promote VERSION ENVIRONMENT`: the release's digests
// verified, the apps rendered for the environment naming them, the plan
// printed field by field against what Marathon runs, then a canary — one
// instance of each app (or of the services the file marks canary), gated
// on Marathon's health checks and a DIPS ping through the pinger — and
// the rest; any failure rolls every app back to the version it had.
func RunPromote(ctx context.Context, st settings.Settings, ver, environment string, out, log io.Writer) (*Promoted, error) {
	v, err := version.Parse(ver)
	if err != nil {
		return nil, err
	}
	if err := st.Need(settings.AreaRelease, settings.AreaMarathon, settings.AreaEvidence, settings.AreaHost); err != nil {
		return nil, err
	}
	rel := st.Release
	rel.Environment = environment
	c, err := NewConfig(v, rel, RegistryAddress(st))
	if err != nil {
		return nil, err
	}
	pins, err := releasedPins(ctx, c)
	if err != nil {
		return nil, err
	}
	apps, err := renderApps(c, pins)
	if err != nil {
		return nil, err
	}
	pr := &Promoted{Version: v.Raw, Environment: environment, Apps: apps}
	// Before any request to Marathon: the evidence of every image.
	if pr.Verified, err = VerifyApps(ctx, st.Evidence, apps, environment); err != nil {
		return pr, fmt.Errorf("promote %s to %s: nothing was deployed: %w", v.Raw, environment, err)
	}
	for _, vr := range pr.Verified {
		fmt.Fprintf(out, "verified %s: signed, built by %s, smoke passed (%d services)\n", vr.Ref, vr.Result.Provenance.BuilderID, len(vr.Result.Smoke.Services))
	}
	d, err := deployer(st, log)
	if err != nil {
		return pr, err
	}
	if pr.Plan, err = deploy.Plan(ctx, d.Client, apps); err != nil {
		return pr, err
	}
	fmt.Fprintf(out, "Promote %s to %s: the plan against what Marathon runs\n", v.Raw, environment)
	FormatPlanFields(out, pr.Plan)
	pr.Result, err = deploy.ApplyCanary(ctx, d.Client, apps, deploy.Canary{Apps: canaries(apps), Gate: pingGate(c.Services.PingerURL)}, d.Options)
	if err != nil {
		if len(pr.Result.RolledBack) > 0 {
			fmt.Fprintf(out, "rolled back: %s\n", strings.Join(pr.Result.RolledBack, ", "))
		}
		return pr, fmt.Errorf("promoting %s to %s: %w", v.Raw, environment, err)
	}
	which := "every app"
	if c := canaries(apps); len(c) > 0 {
		which = strings.Join(c, ", ")
	}
	fmt.Fprintf(out, "promoted %s to %s: %d apps (canaries first: %s), every image the digest that was smoke-tested\n", v.Raw, environment, len(apps), which)
	return pr, nil
}

// FormatPlanFields prints a plan field by field.
func FormatPlanFields(w io.Writer, plan []deploy.Change) {
	for _, ch := range plan {
		fmt.Fprintf(w, "  %-9s %s\n", ch.Action, ch.ID)
		for _, f := range ch.Fields {
			fmt.Fprintf(w, "            %s: %s → %s\n", f.Path, f.Old, f.New)
		}
	}
}

// canaries are the ids of the apps the services file marks canary (none
// marked: nil, every app is one).
func canaries(apps []render.App) []string {
	var out []string
	for _, a := range apps {
		if a.Kind == render.KindService && a.Service.Canary {
			out = append(out, a.ID)
		}
	}
	return out
}

// pingGate pings each canary task of a DIRAC service through the pinger,
// as Consul's check would (GET <pinger>/ping?host=…&port=…&service=…); an
// app that is no DIRAC service (the registrator) is gated on Marathon's
// health checks alone.
func pingGate(pinger string) func(context.Context, render.App, []app.Task) error {
	return func(ctx context.Context, a render.App, tasks []app.Task) error {
		if a.Kind != render.KindService {
			return nil
		}
		if pinger == "" {
			return fmt.Errorf("the services file names no pingerURL: the canary cannot be pinged")
		}
		for _, t := range tasks {
			if len(t.Ports) == 0 {
				return fmt.Errorf("task %s has no port", t.ID)
			}
			q := url.Values{"host": {t.Host}, "port": {strconv.Itoa(t.Ports[0])}, "service": {a.Service.Name}}
			u := strings.TrimRight(pinger, "/") + "/ping?" + q.Encode()
			if err := ping(ctx, u, a.Service.Name); err != nil {
				return fmt.Errorf("DIPS ping of task %s (%s:%d) through the pinger: %w", t.ID, t.Host, t.Ports[0], err)
			}
		}
		return nil
	}
}

func ping(ctx context.Context, u, service string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Name string `json:"name"`
	}
	b := make([]byte, 64<<10)
	n, _ := io.ReadFull(resp.Body, b)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the pinger answered %s: %s", resp.Status, strings.TrimSpace(string(b[:min(n, 300)])))
	}
	if err := json.Unmarshal(b[:n], &body); err != nil || body.Name != service {
		return fmt.Errorf("the pinger's answer is not %s's ping: %.300s", service, b[:n])
	}
	return nil
}

// Restored is one app put back by a rollback.
type Restored struct {
	ID       string
	From, To string // image references
}

// RunRollback is `mage rollback ENVIRONMENT`: every app of the environment
// put back at once to the previous release it ran — the newest earlier
// version of the app, on Marathon, that named another release's image —
// after verifying that release's evidence; it says what it restored.
func RunRollback(ctx context.Context, st settings.Settings, environment string, out, log io.Writer) ([]Restored, error) {
	if err := st.Need(settings.AreaRelease, settings.AreaMarathon, settings.AreaEvidence, settings.AreaHost); err != nil {
		return nil, err
	}
	f, err := LoadServices(st.Release)
	if err != nil {
		return nil, err
	}
	if _, ok := f.Environments[environment]; !ok {
		return nil, fmt.Errorf("%q is not an environment of %s (have %s)", environment, f.Path, strings.Join(f.EnvironmentNames(), ", "))
	}
	d, err := deployer(st, log)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, s := range f.Services {
		ids = append(ids, render.AppID(s.Name))
	}
	if f.Discovery != nil {
		ids = append(ids, render.RegistratorID)
	}
	var prevApps []render.App
	var restored []Restored
	var errs []error
	for _, id := range ids {
		a, r, err := previousRelease(ctx, d.Client, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		prevApps = append(prevApps, a)
		restored = append(restored, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, err := VerifyApps(ctx, st.Evidence, prevApps, environment); err != nil {
		return nil, fmt.Errorf("rollback: the previous release's images: %w", err)
	}
	if _, err := deploy.Apply(ctx, d.Client, prevApps, d.Options); err != nil {
		return restored, fmt.Errorf("rollback of %s: %w", environment, err)
	}
	for _, r := range restored {
		fmt.Fprintf(out, "restored %s: %s → %s\n", r.ID, r.From, r.To)
	}
	return restored, nil
}

// previousRelease is the newest earlier version of the app that named
// another release's image than the one it runs.
func previousRelease(ctx context.Context, c *client.Client, id string) (render.App, Restored, error) {
	versions, err := c.AppVersions(ctx, id)
	if err != nil {
		return render.App{}, Restored{}, fmt.Errorf("app %s: its versions: %w", id, err)
	}
	if len(versions) == 0 {
		return render.App{}, Restored{}, fmt.Errorf("app %s is not on Marathon: nothing to roll back", id)
	}
	cur, err := c.AppVersion(ctx, id, versions[0])
	if err != nil || cur == nil {
		return render.App{}, Restored{}, fmt.Errorf("app %s: version %s: %v", id, versions[0], err)
	}
	now := app.ParseImage(cur.Image())
	for _, ver := range versions[1:] {
		def, err := c.AppVersion(ctx, id, ver)
		if err != nil || def == nil {
			continue
		}
		old := app.ParseImage(def.Image())
		if old.Digest == now.Digest && old.Tag == now.Tag {
			continue // a scale or restart of the same release
		}
		doc := storedDefinition(def)
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return render.App{}, Restored{}, err
		}
		kind := render.KindService
		if id == render.RegistratorID {
			kind = render.KindRegistrator
		}
		return render.App{Kind: kind, ID: id, Doc: doc, JSON: b}, Restored{ID: id, From: cur.Image(), To: def.Image()}, nil
	}
	return render.App{}, Restored{}, fmt.Errorf("app %s: Marathon holds no earlier release of it (%d versions, all %s)", id, len(versions), now)
}

// storedDefinition is a stored version as a definition to PUT: without the
// fields Marathon adds to what it answers (version, tasks, status).
func storedDefinition(d *app.Definition) map[string]any {
	doc := map[string]any{}
	for k, v := range d.Doc {
		if slices.Contains([]string{"version", "versionInfo", "tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "lastTaskFailure", "readinessCheckResults"}, k) {
			continue
		}
		doc[k] = v
	}
	return doc
}
