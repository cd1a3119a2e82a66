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
	"sort"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/registrator/entry"
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
	Log           *log.Logger
}

// sink is where entries go.
type sink interface {
	Name() string
	// Apply makes the sink hold exactly want for the apps in scope, or
	// for every app when all.
	Apply(ctx context.Context, scope []string, all bool, want []Want) error
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
	status  status
	started time.Time
}

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
	r := &Registrator{cfg: cfg, dirty: map[string]bool{}, wake: make(chan struct{}, 1), held: map[string][]Want{}, m: newMetrics(), started: time.Now()}
	if len(cfg.EtcdEndpoints) > 0 {
		e, err := newEtcdSink(cfg.EtcdEndpoints, cfg.EtcdPrefix, cfg.LeaseTTL)
		if err != nil {
			return nil, err
		}
		r.etcd = e
		r.sinks = append(r.sinks, e)
	}
	if cfg.ConsulAddr != "" {
		c, err := newConsulSink(cfg.ConsulAddr, cfg.ConsulToken, cfg.Log.Printf)
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

// Run follows the event stream and writes the sinks until ctx ends.
func (r *Registrator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.writer(ctx) }()
	go func() { defer wg.Done(); r.follow(ctx) }()
	wg.Wait()
	return ctx.Err()
}

// follow reads the event stream, reconnecting with backoff; every
// (re)connection asks for a full reconciliation, since events may have
// been missed while it was down.
func (r *Registrator) follow(ctx context.Context) {
	backoff := backoffFrom(500*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		body, err := r.cfg.Marathon.Events(ctx)
		if err != nil {
			r.fail("event stream: %v", err)
			sleep(ctx, backoff.next())
			continue
		}
		r.setAttached(true)
		r.markAll()
		backoff.reset()
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
		r.m.reconnects.Inc()
		r.cfg.Log.Printf("event stream ended; reconnecting")
		sleep(ctx, backoff.next())
	}
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
		w := a.wants()
		held[a.ID] = w
		want = append(want, w...)
	}
	for _, s := range r.sinks {
		if err := r.apply(ctx, s, nil, true, want); err != nil {
			r.m.sinkErrors.WithLabelValues(s.Name()).Inc()
			return err
		}
	}
	r.mu.Lock()
	r.held = held
	r.status.LastFullSync = time.Now()
	r.mu.Unlock()
	r.m.entries.Set(float64(len(want)))
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
		w := a.wants()
		held[id] = w
		want = append(want, w...)
	}
	for _, s := range r.sinks {
		if err := r.apply(ctx, s, ids, false, want); err != nil {
			r.m.sinkErrors.WithLabelValues(s.Name()).Inc()
			return err
		}
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
		n += len(w)
	}
	r.mu.Unlock()
	r.m.entries.Set(float64(n))
	r.m.appSyncs.Add(float64(len(ids)))
	return nil
}

// SinkTimeout bounds one write to a sink: etcd's client waits forever for
// a member that is down.
var SinkTimeout = 10 * time.Second

func (r *Registrator) apply(ctx context.Context, s sink, scope []string, all bool, want []Want) error {
	ctx, cancel := context.WithTimeout(ctx, SinkTimeout)
	defer cancel()
	return s.Apply(ctx, scope, all, want)
}

func (r *Registrator) setAttached(v bool) {
	r.mu.Lock()
	r.status.StreamAttached = v
	r.mu.Unlock()
}

// fail logs an error and keeps it for /healthz.
func (r *Registrator) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
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

type backoff struct{ from, max, cur time.Duration }

func backoffFrom(from, max time.Duration) *backoff { return &backoff{from: from, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.from
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
