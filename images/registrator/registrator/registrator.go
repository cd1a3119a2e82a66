// Package registrator follows Marathon's event stream and keeps, for
// every running task of every app, its host, ports (by name), health and
// app version in etcd and Consul — the discovery of seed 002's subscriber
// and seed 000's mesos-consul in one program.
//
// Marathon does not guarantee the order of its events, and a dropped
// connection loses them; so events are only invalidations: an event marks
// its app dirty, and the app is read again (GET /v2/apps/{id}?embed=app.tasks)
// and written to the sinks as a whole. At start, after every reconnect and
// every Resync the registrator reads every app (embed=apps.tasks) and makes
// the sinks hold exactly that. A failed write leaves the app dirty and is
// retried with backoff; nothing is written from a partial read.
package registrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// Config is what the registrator connects to.
type Config struct {
	Marathon      *client.Client
	EtcdEndpoints []string      // none: no etcd
	EtcdPrefix    string        // default entry.DefaultPrefix
	LeaseTTL      time.Duration // default 30 s
	ConsulAddr    string        // "": no Consul
	ConsulToken   string
	Resync        time.Duration // full reconciliation period; default 5 min
	Checks        CheckPolicy   // which HTTP checks Consul may run
	// Secrets are kept out of every log line and of /healthz (the
	// credentials ConfigFromEnv read); Authorization values are in any case.
	Secrets []string
	Log     *log.Logger
}

// sink is where entries go.
type sink interface {
	Name() string
	// Apply makes the sink hold exactly want for the apps in scope, or
	// for every app when all, leaving out the wants marked Refused. An
	// entry the sink itself refuses is returned as a Refusal, and the
	// rest is written: only the sink being unreachable is an error.
	Apply(ctx context.Context, scope []string, all bool, want []Want) ([]Refusal, error)
}

// Refusal is one task a sink does not hold, and why.
type Refusal struct {
	Sink, App, Task string
	Reason          string // one of the Reason… constants
	Detail          string
}

// Registrator is one running registrator.
type Registrator struct {
	cfg   Config
	sinks []sink
	etcd  *etcdSink
	m     *metrics

	mu      sync.Mutex
	dirty   map[string]bool // apps to read again
	all     bool            // read everything again
	wake    chan struct{}
	held    map[string][]Want // what the sinks hold, by app (for /info)
	refused map[refusalKey]Refusal
	status  status
	started time.Time
	checks  *checkRules
}

type refusalKey struct{ sink, app, task, reason string }

type status struct {
	StreamAttached bool      `json:"streamAttached"`
	LastEvent      time.Time `json:"lastEvent"`
	LastFullSync   time.Time `json:"lastFullSync"`
	LastError      string    `json:"lastError,omitempty"`
	LastErrorAt    time.Time `json:"lastErrorAt,omitzero"`
	Pending        int       `json:"pending"` // apps waiting to be written
}

// New connects the sinks (lazily: etcd or Consul down is retried later).
func New(cfg Config) (*Registrator, error) {
	if cfg.Marathon == nil {
		return nil, errors.New("registrator: no Marathon")
	}
	if cfg.EtcdPrefix == "" {
		cfg.EtcdPrefix = entry.DefaultPrefix
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	prefixes, err := parseCheckPolicy(cfg.Checks, EnvPinger, EnvCheckAllow)
	if err != nil {
		return nil, err
	}
	if cfg.Checks.MinInterval <= 0 {
		cfg.Checks.MinInterval = DefaultMinCheckInterval
	}
	r := &Registrator{cfg: cfg, dirty: map[string]bool{}, wake: make(chan struct{}, 1), held: map[string][]Want{}, refused: map[refusalKey]Refusal{},
		m: newMetrics(), started: time.Now(), checks: &checkRules{prefixes: prefixes, minInterval: cfg.Checks.MinInterval, pinger: cfg.Checks.Pinger != ""}}
	if len(cfg.EtcdEndpoints) > 0 {
		e, err := newEtcdSink(cfg.EtcdEndpoints, cfg.EtcdPrefix, cfg.LeaseTTL)
		if err != nil {
			return nil, err
		}
		r.etcd = e
		r.sinks = append(r.sinks, e)
	}
	if cfg.ConsulAddr != "" {
		c, err := newConsulSink(cfg.ConsulAddr, cfg.ConsulToken)
		if err != nil {
			return nil, err
		}
		r.sinks = append(r.sinks, c)
	}
	return r, nil
}

// Close releases the sinks; etcd's lease is revoked, so the entries go at
// once rather than after the TTL.
func (r *Registrator) Close() error {
	if r.etcd != nil {
		return r.etcd.Close()
	}
	return nil
}

// Run follows the event stream and writes the sinks until ctx ends. Every
// app is read at once, whether or not the stream attaches: a Marathon whose
// /v2/events hangs must not leave etcd and Consul empty until the resync.
func (r *Registrator) Run(ctx context.Context) error {
	r.markAll()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.writer(ctx) }()
	go func() { defer wg.Done(); r.follow(ctx) }()
	wg.Wait()
	return ctx.Err()
}

// Stream timing: the answer to GET /v2/events must come within
// StreamAttachTimeout; a stream that stays attached StreamStable resets
// the reconnect backoff (0.5 s doubling to 30 s, with jitter). A stream
// that Marathon (or a proxy) closes at once is so retried ever more
// slowly, not twice a second with a full read each time.
var (
	StreamAttachTimeout = 30 * time.Second
	StreamStable        = 30 * time.Second
)

// follow reads the event stream, reconnecting with backoff; every
// (re)connection asks for a full reconciliation, since events may have
// been missed while it was down.
func (r *Registrator) follow(ctx context.Context) {
	backoff := backoffFrom(500*time.Millisecond, 30*time.Second)
	for ctx.Err() == nil {
		body, err := r.openStream(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.fail("event stream: %v", err)
			sleep(ctx, backoff.next())
			continue
		}
		attached := time.Now()
		r.setAttached(true)
		r.markAll()
		for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: 16 << 20}) {
			if err != nil {
				if ctx.Err() == nil {
					r.fail("event stream: %v", err)
				}
				break
			}
			r.handle(ev.Type, ev.Data)
		}
		body.Close()
		r.setAttached(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(attached) >= StreamStable {
			backoff.reset()
		}
		r.m.reconnects.Inc()
		wait := backoff.next()
		r.cfg.Log.Printf("event stream ended after %s; reconnecting in %s", time.Since(attached).Round(time.Millisecond), wait.Round(time.Millisecond))
		sleep(ctx, wait)
	}
}

// openStream opens the event stream; the answer's headers must come
// within StreamAttachTimeout (the stream itself has no deadline).
func (r *Registrator) openStream(ctx context.Context) (io.ReadCloser, error) {
	sctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(StreamAttachTimeout, cancel)
	body, err := r.cfg.Marathon.Events(sctx)
	if !timer.Stop() {
		if body != nil {
			body.Close()
		}
		cancel()
		return nil, fmt.Errorf("GET /v2/events: no answer within %s", StreamAttachTimeout)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return cancelOnClose{body, cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// handle marks what an event invalidates.
func (r *Registrator) handle(kind, data string) {
	r.m.events.WithLabelValues(kind).Inc()
	r.mu.Lock()
	r.status.LastEvent = time.Now()
	r.mu.Unlock()
	appID, all, ok, err := classify(kind, data)
	switch {
	case err != nil:
		r.fail("%v", err)
	case !ok:
	case all:
		r.markAll()
	default:
		r.mark(appID)
	}
}

func (r *Registrator) mark(appID string) {
	r.mu.Lock()
	r.dirty[appID] = true
	r.mu.Unlock()
	r.poke()
}

func (r *Registrator) markAll() {
	r.mu.Lock()
	r.all = true
	r.mu.Unlock()
	r.poke()
}

func (r *Registrator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// writer drains the dirty set: everything, or the dirty apps one read
// each, however many events named them meanwhile.
func (r *Registrator) writer(ctx context.Context) {
	resync := time.NewTicker(r.cfg.Resync)
	defer resync.Stop()
	backoff := backoffFrom(250*time.Millisecond, 30*time.Second)
	var lost <-chan struct{}
	if r.etcd != nil {
		lost = r.etcd.Lost()
	}
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-resync.C:
			r.markAll()
		case <-lost:
			r.fail("etcd: the lease expired; writing every entry again")
			lost = r.etcd.Lost()
			r.markAll()
		case <-retry:
			retry = nil
		}
		if retry != nil {
			continue // waiting out a backoff; the dirty set keeps growing
		}
		if err := r.drain(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.fail("%v", err)
			retry = time.After(backoff.next())
			continue
		}
		backoff.reset()
	}
}

// drain writes what is dirty. On failure the apps stay dirty.
func (r *Registrator) drain(ctx context.Context) error {
	r.mu.Lock()
	all, dirty := r.all, r.dirty
	r.all, r.dirty = false, map[string]bool{}
	r.status.Pending = 0
	r.mu.Unlock()
	if !all && len(dirty) == 0 {
		return nil
	}
	start := time.Now()
	var err error
	if all {
		err = r.syncAll(ctx)
	} else {
		err = r.syncApps(ctx, dirty)
	}
	if err != nil {
		r.mu.Lock()
		// After a failure the next write is a full one: a sink that was
		// down (a restarted Consul agent forgets its services) may have
		// lost more than these apps.
		r.all = true
		for a := range dirty {
			r.dirty[a] = true
		}
		r.status.Pending = len(r.dirty)
		r.mu.Unlock()
		return err
	}
	r.m.syncSeconds.Observe(time.Since(start).Seconds())
	return nil
}

func (r *Registrator) syncAll(ctx context.Context) error {
	apps, err := listApps(ctx, r.cfg.Marathon)
	if err != nil {
		return fmt.Errorf("marathon: reading the apps: %w", err)
	}
	held := map[string][]Want{}
	var want []Want
	for _, a := range apps {
		w := a.wants(r.checks)
		held[a.ID] = w
		want = append(want, w...)
	}
	if err := r.write(ctx, nil, true, want); err != nil {
		return err
	}
	r.mu.Lock()
	r.held = held
	r.status.LastFullSync = time.Now()
	r.mu.Unlock()
	r.m.entries.Set(float64(written(want)))
	r.m.fullSyncs.Inc()
	return nil
}

func (r *Registrator) syncApps(ctx context.Context, dirty map[string]bool) error {
	ids := make([]string, 0, len(dirty))
	for id := range dirty {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	held := map[string][]Want{}
	var want []Want
	for _, id := range ids {
		a, err := getApp(ctx, r.cfg.Marathon, id)
		if err != nil {
			return fmt.Errorf("marathon: reading app %s: %w", id, err)
		}
		if a == nil {
			held[id] = nil // gone: its entries go
			continue
		}
		w := a.wants(r.checks)
		held[id] = w
		want = append(want, w...)
	}
	if err := r.write(ctx, ids, false, want); err != nil {
		return err
	}
	r.mu.Lock()
	n := 0
	for id, w := range held {
		if w == nil {
			delete(r.held, id)
		} else {
			r.held[id] = w
		}
	}
	for _, w := range r.held {
		n += written(w)
	}
	r.mu.Unlock()
	r.m.entries.Set(float64(n))
	r.m.appSyncs.Add(float64(len(ids)))
	return nil
}

// write applies want to every sink and then records what was kept out:
// the tasks admitted nowhere (Refused), those without a Consul check
// (CheckErr) and those a sink refused.
func (r *Registrator) write(ctx context.Context, scope []string, all bool, want []Want) error {
	var refused []Refusal
	for _, w := range want {
		for _, s := range r.sinks {
			switch {
			case w.Refused != "":
				refused = append(refused, Refusal{Sink: s.Name(), App: w.App, Task: w.Task, Reason: w.refusedReason, Detail: w.Refused})
			case w.CheckErr != "" && s.Name() == "consul":
				refused = append(refused, Refusal{Sink: s.Name(), App: w.App, Task: w.Task, Reason: w.checkReason, Detail: w.CheckErr})
			}
		}
	}
	for _, s := range r.sinks {
		got, err := r.apply(ctx, s, scope, all, want)
		if err != nil {
			r.m.sinkErrors.WithLabelValues(s.Name()).Inc()
			return err
		}
		refused = append(refused, got...)
	}
	r.noteRefusals(scope, all, refused)
	return nil
}

// written counts the wants a sink may hold.
func written(want []Want) int {
	n := 0
	for _, w := range want {
		if w.Refused == "" {
			n++
		}
	}
	return n
}

// noteRefusals replaces the refusals of the apps in scope (every app when
// all) with got; a refusal not seen before is logged and counted, once:
// the same bad label is not logged again at every resync.
func (r *Registrator) noteRefusals(scope []string, all bool, got []Refusal) {
	in := map[string]bool{}
	for _, a := range scope {
		in[a] = true
	}
	r.mu.Lock()
	old := r.refused
	next := map[refusalKey]Refusal{}
	for k, v := range old {
		if !all && !in[k.app] {
			next[k] = v
		}
	}
	var fresh []Refusal
	for _, f := range got {
		k := refusalKey{f.Sink, f.App, f.Task, f.Reason}
		if _, seen := old[k]; !seen {
			fresh = append(fresh, f)
		}
		next[k] = f
	}
	r.refused = next
	r.mu.Unlock()
	for _, f := range fresh {
		r.m.refusedTotal.WithLabelValues(f.Sink, f.Reason).Inc()
		r.cfg.Log.Print(r.scrub(fmt.Sprintf("app %s: task %s not written to %s: %s (refused: %s; logged once)", f.App, f.Task, f.Sink, f.Detail, f.Reason)))
	}
	r.m.refused.Reset()
	for k := range next {
		r.m.refused.WithLabelValues(k.sink, k.reason).Inc()
	}
}

// SinkTimeout bounds one write to a sink: etcd's client waits forever for
// a member that is down.
var SinkTimeout = 10 * time.Second

func (r *Registrator) apply(ctx context.Context, s sink, scope []string, all bool, want []Want) ([]Refusal, error) {
	ctx, cancel := context.WithTimeout(ctx, SinkTimeout)
	defer cancel()
	return s.Apply(ctx, scope, all, want)
}

func (r *Registrator) setAttached(v bool) {
	r.mu.Lock()
	r.status.StreamAttached = v
	r.mu.Unlock()
}

// fail logs an error and keeps it for /healthz (which anyone may read):
// scrubbed of credentials and bounded, whatever Marathon put in its answer.
func (r *Registrator) fail(format string, args ...any) {
	msg := r.scrub(fmt.Sprintf(format, args...))
	r.cfg.Log.Print(msg)
	r.mu.Lock()
	r.status.LastError, r.status.LastErrorAt = msg, time.Now()
	r.mu.Unlock()
}

// Settled tells whether nothing is waiting to be written (tests and the
// smoke test wait for it).
func (r *Registrator) Settled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.all && len(r.dirty) == 0 && r.status.StreamAttached && !r.status.LastFullSync.IsZero()
}

// backoff doubles from from to max; each wait is drawn in its upper half
// (jitter: registrators restarted together do not retry in step).
type backoff struct{ from, max, cur time.Duration }

func backoffFrom(from, max time.Duration) *backoff { return &backoff{from: from, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.from
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *backoff) reset() { b.cur = 0 }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// maxMessage bounds an error kept for /healthz and the log: Marathon's
// error answers (a proxy's HTML page, an echo of the request) go in whole
// otherwise.
const maxMessage = 512

// Authorization values wherever they appear: an "Authorization:" header
// echoed back, a Basic/Bearer credential, DC/OS's token=, user:password@
// in a URL.
var credentialRE = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)(authorization"?\s*[:=]\s*"?)[^"\r\n,;}]*`), "${1}****"},
	{regexp.MustCompile(`(?i)\b(basic|bearer|digest|negotiate)(\s+|%20|\+)[A-Za-z0-9+/=._~%-]{4,}`), "${1} ****"},
	{regexp.MustCompile(`(?i)\b((?:token|password|passwd|pwd|secret)[=:]\s*)[^\s&"',;}]+`), "${1}****"},
	{regexp.MustCompile(`(://)[^/@\s]+@`), "${1}****@"},
}

// scrub makes a message fit to log and to show unauthenticated: the
// configured secrets and any credential-looking value replaced, control
// characters made spaces (one line), at most maxMessage bytes.
func (r *Registrator) scrub(s string) string {
	for _, sec := range r.cfg.Secrets {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, "****")
		}
	}
	for _, c := range credentialRE {
		s = c.re.ReplaceAllString(s, c.with)
	}
	s = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return ' '
		}
		return c
	}, strings.ToValidUTF8(s, "?"))
	return shorten(s, maxMessage)
}
