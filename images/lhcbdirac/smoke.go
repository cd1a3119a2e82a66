package lhcbdirac

// The smoke test runs each service as Marathon would run it from its
// rendered app definition, checks its COMMAND health check inside the
// container and pings it through the pinger image: over DIPS, or over
// HTTPS for DIRAC's Tornado services. A failure
// stops the release before anything is pushed.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/catalog"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/runspec"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// SmokeImages are the built images a service smoke test uses.
type SmokeImages struct {
	LHCbDIRAC *dagger.Container
	Pinger    *dagger.Container
	// PingerPort is where the pinger image listens.
	PingerPort int
	Client     *dagger.Container // has busybox wget: reaches the pinger as Consul would
	// Database is the smoke database (MariaDB), bound as MariaDBAlias;
	// nil when the services need none (the FIXTURE's).
	Database *dagger.Service
}

// SmokeResult is one service's smoke test.
type SmokeResult struct {
	Service      string
	App          render.App // the app it ran from
	Start        time.Time
	Health       string // the health check's output
	HealthPassed bool
	HealthTook   time.Duration
	Ping         string // the pinger's answer
	PingTook     time.Duration
	Log          string // the service's own output, through its health check and ping
	Elapsed      time.Duration
	Err          error // why it failed, nil when it passed
	// CannotRun, when set, is why the service was not run: what this
	// machine lacks ("cannot run here: …"); neither passed nor failed.
	CannotRun string
}

// SmokeOptions tune a run.
type SmokeOptions struct {
	// Fresh forces the service to run again even when Dagger has the
	// result of the same inputs cached (mage testService).
	Fresh bool
}

// MaxGrace caps the wait for a service's first passing health check.
var MaxGrace = 120 * time.Second

// RunSpec is how Marathon would run the app: the run spec of its definition,
// with PORT0… allocated as on an agent.
//
// The instance and container ids are derived from the app definition
// instead of drawn at random as Marathon and Mesos do, so an unchanged app
// is the same task and Dagger answers a warm release's smoke test from its
// cache.
func RunSpec(app render.App) (runspec.Spec, error) {
	h := sha256.Sum256(app.JSON)
	var instance, container [16]byte
	copy(instance[:], h[:16])
	copy(container[:], h[16:])
	return runspec.FromApp(app.JSON, runspec.Options{Host: "smoke-agent",
		InstanceID: runspec.FormatUUID(instance), ContainerID: runspec.FormatUUID(container)})
}

// container applies the run spec to the image: env (PORT0… included),
// exposed container ports, the kit mounted at exactly the app's volume
// paths, the app's docker labels. Dagger cannot cap CPU or memory; the
// resources reach the task as Marathon passes them, MARATHON_APP_RESOURCE_*.
func container(c *dagger.Client, imgs SmokeImages, app render.App, spec runspec.Spec, kit Kit) (*dagger.Container, error) {
	ctr := imgs.LHCbDIRAC
	if imgs.Database != nil {
		ctr = ctr.WithServiceBinding(MariaDBAlias, imgs.Database)
	}
	for _, kv := range spec.EnvList() {
		k, v, _ := strings.Cut(kv, "=")
		ctr = ctr.WithEnvVariable(k, v)
	}
	// The task's sandbox, empty as a new task's is.
	ctr = ctr.WithMountedDirectory(spec.Sandbox.ContainerPath, c.Directory())
	for _, m := range spec.Mounts {
		switch m.HostPath {
		case app.Service.DiracCfg:
			ctr = ctr.WithMountedFile(m.ContainerPath, c.Host().File(kit.DiracCfg))
		case app.Service.GridSecurity:
			ctr = ctr.WithMountedDirectory(m.ContainerPath, c.Host().Directory(kit.GridSecurity))
		default:
			return nil, fmt.Errorf("%s: volume hostPath %q (containerPath %q) has no smoke-test stand-in: only the environment's diracCfg and gridSecurity are provided", app.Service.Name, m.HostPath, m.ContainerPath)
		}
	}
	for _, p := range spec.Ports {
		if p.Protocol == "tcp" || p.Protocol == "" {
			// Not waited for by Dagger: the health check says when the
			// task is up, and a task that never listens must still give
			// its log.
			ctr = ctr.WithExposedPort(p.ContainerPort, dagger.ContainerWithExposedPortOpts{ExperimentalSkipHealthcheck: true})
		}
	}
	for k, v := range spec.Labels {
		ctr = ctr.WithLabel(k, v)
	}
	return ctr, nil
}

// argv is the task's command: the app's entrypoint (or the image's) and args.
func argv(ctx context.Context, img *dagger.Container, spec runspec.Spec) ([]string, error) {
	entry := spec.Entrypoint
	if entry == nil {
		var err error
		if entry, err = img.Entrypoint(ctx); err != nil {
			return nil, err
		}
	}
	return append(append([]string{}, entry...), spec.Args...), nil
}

// One instance per service, as on Marathon: the task runs once, in a
// Dagger service container, where its COMMAND health check runs beside it
// (as Mesos runs it inside the task's container); once the check passes,
// the pinger pings that same instance over the Dagger network, as Consul
// pings the instance Marathon health-checked. The service container and
// the client that asks the pinger share a cache volume (one directory per
// run): the service's side writes the check's result and the task's
// output there, the client waits for the result, pings, and reads the log.

// smokeResults is the cache volume the two sides share, mounted at
// smokeResultsPath in both.
const (
	smokeResults     = "lhcbdirac-smoke-results"
	smokeResultsPath = "/smoke-results"
)

// serviceScript is the task's container: it starts the task in the
// background and runs the app's COMMAND health check the way Mesos does
// (sh -c, bounded by timeoutSeconds) until it passes or the grace period
// ends, writes the outcome (health.done last, atomically), then keeps the
// container up for the ping. The task's argv arrives as "$@" and the check
// as $SMOKE_HEALTH: nothing from the app is spliced into the script.
const serviceScript = `dir=$SMOKE_RESULT
rm -rf "$dir"; mkdir -p "$dir"
date +%s%N >"$dir/start"
"$@" >"$dir/service.log" 2>&1 &
task=$!
i=0
result=1
while :; do
  if ! kill -0 "$task" 2>/dev/null; then
    echo "the task exited before its health check passed" >"$dir/health"; break
  fi
  if timeout "$SMOKE_TIMEOUT" /bin/sh -c "$SMOKE_HEALTH" >"$dir/check.log" 2>&1; then
    { echo "healthy after ${i}s:"; cat "$dir/check.log"; } >"$dir/health"; result=0; break
  fi
  i=$((i+1))
  if [ "$i" -ge "$SMOKE_GRACE" ]; then
    { echo "not healthy within ${SMOKE_GRACE}s; last check:"; cat "$dir/check.log"; } >"$dir/health"; break
  fi
  sleep 1
done
date +%s%N >"$dir/checked"
echo "$result" >"$dir/health.tmp" && mv "$dir/health.tmp" "$dir/health.done"
wait "$task"
echo "the task exited ($?)" >>"$dir/service.log"
while :; do sleep 3600; done
`

// clientScript waits for the service side's result, then (when healthy)
// asks the pinger for a ping of that instance, as Consul's check does, and
// prints sections the test reads: "@@@health <result> <start> <checked>",
// "@@@ping <wget's exit>", "@@@log" (the task's output, last).
const clientScript = `dir=$SMOKE_RESULT
i=0
while [ ! -f "$dir/health.done" ] && [ "$i" -lt "$SMOKE_WAIT" ]; do i=$((i+1)); sleep 1; done
if [ -f "$dir/health.done" ]; then
  echo "@@@health $(cat "$dir/health.done") $(cat "$dir/start") $(cat "$dir/checked")"
  cat "$dir/health"
  if [ "$(cat "$dir/health.done")" = 0 ]; then
    # timeout(1), not wget -T: busybox wget -T segfaults in bookworm.
    out=$(timeout 60 busybox wget -q -O - "$SMOKE_PING" 2>&1)
    echo "@@@ping $?"
    printf '%s\n' "$out"
  fi
else
  echo "@@@health none"
  echo "the task's container wrote no health check result within ${SMOKE_WAIT}s"
fi
echo "@@@log"
cat "$dir/service.log" 2>/dev/null
rm -rf "$dir"
`

// Smoke smoke-tests one app.
func Smoke(ctx context.Context, c *dagger.Client, imgs SmokeImages, app render.App, kit Kit, o SmokeOptions) (SmokeResult, error) {
	start := time.Now()
	r := SmokeResult{Service: app.Service.Name, App: app, Start: start}
	spec, err := RunSpec(app)
	if err != nil {
		return r, fmt.Errorf("%s: %w", app.Service.Name, err)
	}
	ctr, err := container(c, imgs, app, spec, kit)
	if err != nil {
		return r, err
	}
	args, err := argv(ctx, imgs.LHCbDIRAC, spec)
	if err != nil {
		return r, err
	}
	var hc *runspec.HealthCheck
	for i := range spec.Health {
		if spec.Health[i].Protocol == "COMMAND" {
			hc = &spec.Health[i]
			break
		}
	}
	if hc == nil {
		return r, fmt.Errorf("%s: the app has no COMMAND health check to run", app.Service.Name)
	}
	// The run's directory in the shared volume: named by the app and the
	// image (two runs of one app on two images at once keep apart), and by
	// a nonce when fresh. Otherwise it is the same for the same inputs, so
	// Dagger may answer an unchanged test from its cache.
	imgID, err := imgs.LHCbDIRAC.ID(ctx)
	if err != nil {
		return r, err
	}
	key := sha256.New()
	fmt.Fprintf(key, "%s\x00%s\x00", app.JSON, imgID)
	if o.Fresh {
		fmt.Fprint(key, time.Now().UnixNano())
	}
	dir := fmt.Sprintf("%s/%x", smokeResultsPath, key.Sum(nil)[:12])
	results := c.CacheVolume(smokeResults)

	// (1) The task, with its COMMAND health check beside it. Marathon's
	// grace period bounds the wait (at most MaxGrace here: a smoke test
	// should not take minutes to say a service never came up).
	grace := min(max(hc.GracePeriodSeconds, 10), int(MaxGrace/time.Second))
	svc := ctr.
		WithMountedCache(smokeResultsPath, results).
		WithEnvVariable("SMOKE_RESULT", dir).
		WithEnvVariable("SMOKE_HEALTH", hc.Command).
		WithEnvVariable("SMOKE_GRACE", strconv.Itoa(grace)).
		WithEnvVariable("SMOKE_TIMEOUT", strconv.Itoa(max(hc.TimeoutSeconds, 1))).
		AsService(dagger.ContainerAsServiceOpts{Args: append([]string{"/bin/sh", "-c", serviceScript, "smoke"}, args...)})

	// (2) Once healthy, a ping of that instance through the pinger, over
	// the Dagger network.
	alias := Alias(app.Service.Name)
	port := app.Service.Port
	pingerSvc := imgs.Pinger.
		WithMountedDirectory(DiracRoot+"/etc/grid-security", c.Host().Directory(kit.GridSecurity)).
		WithEnvVariable("PINGER_ALLOW", fmt.Sprintf("%s:%d", alias, port)).
		WithServiceBinding(alias, svc).
		AsService(dagger.ContainerAsServiceOpts{UseEntrypoint: true})
	q := url.Values{"host": {alias}, "port": {strconv.Itoa(port)}, "service": {app.Service.Name}}
	what := "DIPS ping"
	if app.Service.Protocol == services.ProtocolHTTPS {
		q.Set("protocol", services.ProtocolHTTPS) // DIRAC's POST method=ping, as Consul's check asks
		what = "HTTPS ping"
	}
	get := fmt.Sprintf("http://pinger:%d/ping?%s", imgs.PingerPort, q.Encode())
	out, err := imgs.Client.
		WithServiceBinding("pinger", pingerSvc).
		WithMountedCache(smokeResultsPath, results).
		WithEnvVariable("SMOKE_RESULT", dir).
		WithEnvVariable("SMOKE_WAIT", strconv.Itoa(grace+60)).
		WithEnvVariable("SMOKE_PING", get).
		WithExec([]string{"/bin/sh", "-c", clientScript}).
		Stdout(ctx)
	if err != nil {
		return r, fmt.Errorf("%s: running the task: %w", app.Service.Name, err)
	}
	res := readSmokeOutput(out)
	r.Health, r.Log, r.Ping = res.health, res.log, res.ping
	r.HealthTook = res.checked
	if r.HealthTook <= 0 {
		r.HealthTook = time.Since(start)
	}
	if !res.healthy {
		return r, fmt.Errorf("%s: health check %q failed:\n%s\n%s", app.Service.Name, hc.Command, indent(r.Health), indent(lines.Tail(r.Log, 40)))
	}
	r.HealthPassed = true
	r.PingTook = max(time.Since(start)-r.HealthTook, 0)
	if res.pingExit != 0 || !strings.Contains(r.Ping, fmt.Sprintf("%q", app.Service.Name)) {
		return r, fmt.Errorf("%s: %s through the pinger (GET %s) failed (exit %d): %s", app.Service.Name, what, get, res.pingExit, r.Ping)
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// smokeOutput is what clientScript printed, read back.
type smokeOutput struct {
	healthy      bool
	checked      time.Duration // from the task's start to its check's outcome
	health, ping string
	pingExit     int
	log          string
}

func readSmokeOutput(out string) smokeOutput {
	var r smokeOutput
	r.pingExit = -1
	var section *string
	var b strings.Builder
	flush := func() {
		if section != nil {
			*section = strings.TrimRight(b.String(), "\n")
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(out, "\n") {
		head := strings.TrimRight(line, "\n")
		switch f := strings.Fields(head); {
		case section == &r.log:
			b.WriteString(line) // the log is last: markers inside it are its own
		case len(f) > 0 && f[0] == "@@@health":
			flush()
			section = &r.health
			if len(f) == 4 {
				r.healthy = f[1] == "0"
				t0, e0 := strconv.ParseInt(f[2], 10, 64)
				t1, e1 := strconv.ParseInt(f[3], 10, 64)
				if e0 == nil && e1 == nil && t1 >= t0 {
					r.checked = time.Duration(t1 - t0)
				}
			}
		case len(f) > 0 && f[0] == "@@@ping":
			flush()
			section = &r.ping
			if len(f) == 2 {
				r.pingExit, _ = strconv.Atoi(f[1])
			}
		case head == "@@@log":
			flush()
			section = &r.log
		default:
			b.WriteString(line)
		}
	}
	flush()
	return r
}

// lastLines is s's last n lines.
func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// SmokeServicesOptions tune SmokeServices.
type SmokeServicesOptions struct {
	// Database starts the smoke database (MariaDB, from MariaDBBase) for
	// the services that read one; the FIXTURE's read none.
	Database    bool
	MariaDBBase string
	Fresh       bool
	P           *progress.Reporter
	// Concurrency bounds the services run at once (default 6: they mostly
	// wait for their interpreters to start).
	Concurrency int
}

// SmokeServices smoke-tests every DIRAC service of apps (the registrator's
// app is no DIRAC service) at once, with one kit and one smoke database
// for them all. It returns every service's result, sorted by name, and an
// error joining the failures.
//
// A services file of the seed's six gets the fixed kit (NewKit); one
// listing any other service (services:all's) gets the kit of the catalog
// of the image under test (NewCatalogKit), its services started in
// catalog.Waves, as many at once as memory and cores allow
// (AutoConcurrency), and those the catalog says cannot run here given as
// such (CannotRun), not run.
func SmokeServices(ctx context.Context, c *dagger.Client, imgs SmokeImages, apps []render.App, o SmokeServicesOptions) ([]SmokeResult, error) {
	services := render.Services(apps)
	if o.Database && NeedsCatalog(services) {
		return smokeCatalog(ctx, c, imgs, services, o)
	}
	kit, err := NewKit(services)
	if err != nil {
		return nil, err
	}
	if o.Database && len(kit.DB.Databases) > 0 {
		if imgs.Database, err = MariaDB(ctx, c, o.MariaDBBase, imgs.LHCbDIRAC, kit); err != nil {
			return nil, err
		}
		o.P.Infof("smoke database: MariaDB (Debian) with %s", strings.Join(kit.DB.Databases, ", "))
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 6
	}
	r := &smokeRun{c: c, imgs: imgs, kit: kit, o: o, sem: make(chan struct{}, o.Concurrency)}
	r.wave(ctx, services)
	return r.done()
}

// smokeRun collects the results of one SmokeServices.
type smokeRun struct {
	c       *dagger.Client
	imgs    SmokeImages
	kit     Kit
	o       SmokeServicesOptions
	sem     chan struct{}
	mu      sync.Mutex
	results []SmokeResult
	errs    []error
}

// wave smoke-tests apps, at most the concurrency at once, and returns
// when every one is done.
func (r *smokeRun) wave(ctx context.Context, apps []render.App) {
	var wg sync.WaitGroup
	for _, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sem <- struct{}{}
			defer func() { <-r.sem }()
			step := r.o.P.Start("smoke %s", app.Service.Name)
			res, err := Smoke(ctx, r.c, r.imgs, app, r.kit, SmokeOptions{Fresh: r.o.Fresh})
			res.Err = err
			r.mu.Lock()
			defer r.mu.Unlock()
			r.results = append(r.results, res)
			if err != nil {
				r.errs = append(r.errs, step.Fail(err))
				return
			}
			step.Done()
		}()
	}
	wg.Wait()
}

func (r *smokeRun) done() ([]SmokeResult, error) {
	sort.Slice(r.results, func(i, j int) bool { return r.results[i].Service < r.results[j].Service })
	return r.results, errors.Join(r.errs...)
}

// smokeCatalog is SmokeServices with the catalog of the image under test.
func smokeCatalog(ctx context.Context, c *dagger.Client, imgs SmokeImages, apps []render.App, o SmokeServicesOptions) ([]SmokeResult, error) {
	step := o.P.Start("smoke kit from the catalog of the image under test")
	cat, dir, err := ImageCatalog(ctx, c, imgs.LHCbDIRAC)
	if err != nil {
		return nil, step.Fail(err)
	}
	defer os.RemoveAll(dir)
	kit, run, err := NewCatalogKit(apps, cat, dir)
	if err != nil {
		return nil, step.Fail(err)
	}
	step.Done()
	if o.Concurrency <= 0 {
		o.Concurrency = AutoConcurrency()
	}
	r := &smokeRun{c: c, imgs: imgs, kit: kit, o: o, sem: make(chan struct{}, o.Concurrency)}
	byName := map[string]render.App{}
	for _, a := range apps {
		if why := CannotRun(a.Service, cat); why != "" {
			r.results = append(r.results, SmokeResult{Service: a.Service.Name, App: a, Start: time.Now(), CannotRun: why})
			o.P.Start("smoke %s", a.Service.Name).Skip(why)
			continue
		}
		byName[a.Service.Name] = a
	}
	// HTTPS services run as their apps say (dirac-tornado-service) and
	// are pinged over HTTPS, like the DIPS ones in the same waves.
	var waves [][]render.App
	for _, w := range catalog.Waves(run) {
		var wave []render.App
		for _, s := range w {
			wave = append(wave, byName[s.Name])
		}
		waves = append(waves, wave)
	}
	// What the catalog does not know (a service the image does not ship)
	// is in no wave: it starts with the last one and fails with its log.
	inWave := map[string]bool{}
	for _, s := range run {
		inWave[s.Name] = true
	}
	for _, a := range apps {
		if _, ok := byName[a.Service.Name]; ok && !inWave[a.Service.Name] {
			if len(waves) == 0 {
				waves = append(waves, nil)
			}
			waves[len(waves)-1] = append(waves[len(waves)-1], a)
		}
	}
	if len(kit.DB.Databases) > 0 {
		if imgs.Database, err = MariaDB(ctx, c, o.MariaDBBase, imgs.LHCbDIRAC, kit); err != nil {
			return nil, err
		}
		r.imgs = imgs
		o.P.Infof("smoke database: MariaDB (Debian) with %d databases (%s)", len(kit.DB.Databases), strings.Join(kit.DB.Databases, ", "))
	}
	o.P.Infof("smoke: %d services to run in %d waves, %d at once; %d cannot run here", len(byName), len(waves), o.Concurrency, len(apps)-len(byName))
	for _, w := range waves {
		r.wave(ctx, w)
	}
	return r.done()
}

// perService is the memory one service's smoke test is given: the service
// (at most 125 MiB RSS measured on 12.0.21), its health checks (a Go
// binary each), the pinger and the shells around them, with room to spare
// (the engine measured below 4 GiB with 56 services, 8 at once).
const perService = 512 << 20

// AutoConcurrency is how many services are smoke-tested at once: as many
// as the available memory holds at perService each, at most four per core
// (they mostly wait on their interpreters' start), at least one.
func AutoConcurrency() int {
	return autoConcurrency(memAvailable(), runtime.NumCPU())
}

func autoConcurrency(avail int64, cpus int) int {
	n := 4 * cpus
	if avail > 0 {
		n = min(n, int(avail/perService))
	}
	return max(n, 1)
}

// memAvailable is /proc/meminfo's MemAvailable in bytes, 0 when unknown.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
