package metrics

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/httpbody"
)

// Config is one collector's.
type Config struct {
	Target    string        // cAdvisor's host (-t); "" reads the Docker Engine API
	Influx    Influx        // -c's file, then INFLUXDB_* variables
	Write     bool          // -i: write to InfluxDB (otherwise print only)
	Quiet     bool          // -q: print nothing of what is collected
	Interval  time.Duration // between readings (default 30 s)
	Host      string        // the host tag
	Docker    string        // the Docker socket
	BufferMax int           // points kept while InfluxDB is away (default 200000)
	// BufferMaxBytes bounds the same buffer in bytes (default 64 MiB).
	BufferMaxBytes int64
	Out            io.Writer // where collected points are printed (unless Quiet)
	Log            *log.Logger
}

// Collector reads and writes on an interval.
type Collector struct {
	cfg    Config
	cadv   *CAdvisor
	docker *Docker
	prev   map[string]*Sample
	Buffer Buffer
	writer Writer

	mu          sync.Mutex
	stats       Stats
	logged      map[string]bool // the reasons already logged (each is logged once)
	reasonsFull bool            // maxReasons reached (said once)
	failures    map[string]*failure
}

// Stats are a collector's counters. Every point collected is written,
// waiting, or counted in one of Invalid, Refused and Dropped.
type Stats struct {
	Rounds, Containers, Points, Written uint64
	Invalid                             uint64 // could not be encoded (an odd label)
	Refused                             uint64 // InfluxDB refused them (a 400)
	Dropped                             uint64 // the buffer was full (oldest first)
	LastError                           string
}

// maxReasons bounds the reasons remembered as logged: beyond it, new ones
// are counted only (and that is said once).
const maxReasons = 1000

// New makes a collector.
func New(cfg Config) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	c := &Collector{cfg: cfg, prev: map[string]*Sample{}, writer: Writer{Target: cfg.Influx}, logged: map[string]bool{}, failures: map[string]*failure{}}
	c.Buffer.Max, c.Buffer.MaxBytes = cfg.BufferMax, cfg.BufferMaxBytes
	if cfg.Target != "" {
		u := cfg.Target
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		if !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"), ":") {
			u += ":8080" // the seed's cAdvisor port
		}
		c.cadv = &CAdvisor{URL: u}
	} else {
		c.docker = &Docker{Socket: cfg.Docker}
	}
	return c
}

// Collect takes one reading of every DIRAC container (and, from cAdvisor,
// of the machine), encodes the points and queues them (or prints them).
// It returns the containers read and the points made. A point that cannot
// be encoded (an odd label) is counted in Stats.Invalid, and its reason
// logged once per container.
func (c *Collector) Collect(ctx context.Context) (containers, points int, err error) {
	var enc lineprotocol.Encoder
	enc.SetPrecision(lineprotocol.Nanosecond)
	var invalid int
	emit := func(prev, cur *Sample) {
		n, bad, why := Points(&enc, c.cfg.Host, prev, cur)
		points += n
		if bad > 0 {
			invalid += bad
			var pe *PointError
			key := why.Error()
			if errors.As(why, &pe) {
				key = pe.Key()
			}
			c.logOnce(key, "%d points not written (this reason is logged once; the points are counted): %v", bad, why)
		}
	}
	// A container's rates run from its sample of the previous round to this
	// one, so consecutive points cover the time between them whole.
	next := func(cur, older *Sample) {
		prev := c.prev[cur.ID]
		if prev != nil && !prev.Time.Before(cur.Time) {
			return // no newer sample since the last round (cAdvisor's)
		}
		if prev == nil {
			prev = older
		}
		emit(prev, cur)
		c.prev[cur.ID] = cur
	}
	seen := map[string]bool{}
	if c.cadv != nil {
		pairs, err := c.cadv.Containers(ctx)
		if err != nil {
			return 0, 0, err
		}
		for _, p := range pairs {
			if p[1] != nil {
				next(p[1], p[0])
				seen[p[1].ID] = true
				containers++
			}
		}
		if m, err := c.cadv.Machine(ctx); err == nil && m[1] != nil {
			next(m[1], m[0])
			seen["/"] = true
		}
	} else {
		samples, rerr := c.docker.Containers(ctx)
		if rerr != nil && samples == nil {
			return 0, 0, rerr
		}
		err = rerr // some containers unread: the others are still written
		for _, s := range samples {
			next(s, nil)
			seen[s.ID] = true
			containers++
		}
	}
	for id := range c.prev {
		if !seen[id] {
			delete(c.prev, id)
		}
	}
	// One point a line; the lines share the round's buffer.
	var lines [][]byte
	for b := enc.Bytes(); len(b) > 0; {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		if i > 1 {
			lines = append(lines, b[:i:i])
		}
		b = b[i:]
	}
	if !c.cfg.Quiet {
		c.cfg.Out.Write(enc.Bytes())
	}
	if c.cfg.Write {
		c.Buffer.Add(lines)
	}
	c.mu.Lock()
	c.stats.Rounds++
	c.stats.Containers += uint64(containers)
	c.stats.Points += uint64(points)
	c.stats.Invalid += uint64(invalid)
	c.mu.Unlock()
	return containers, points, err
}

// logOnce logs a reason the first time it is seen.
func (c *Collector) logOnce(key, format string, args ...any) {
	c.mu.Lock()
	first, full := false, false
	if !c.logged[key] {
		if len(c.logged) < maxReasons {
			c.logged[key], first = true, true
		} else if !c.reasonsFull {
			c.reasonsFull, full = true, true
		}
	}
	c.mu.Unlock()
	if first {
		c.cfg.Log.Print(c.cfg.Influx.Redact(fmt.Sprintf(format, args...)))
	}
	if full {
		c.cfg.Log.Printf("%d reasons logged: later ones are counted, not logged", maxReasons)
	}
}

// refused is the buffer's report of a point InfluxDB refused.
func (c *Collector) refused(line []byte, why *WriteError) {
	c.logOnce("influx\x00"+why.Reason(), "InfluxDB refused a point (this reason is logged once; the points are counted): %s; the point: %s", why.Message, httpbody.Line(string(line), 200))
}

// flush writes the buffer and counts what was written.
func (c *Collector) flush(ctx context.Context) (int, error) {
	sent, err := c.Buffer.Flush(ctx, &c.writer, 5000, c.refused)
	c.mu.Lock()
	c.stats.Written += uint64(sent)
	c.mu.Unlock()
	return sent, err
}

// Stats returns the counters so far.
func (c *Collector) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Dropped, s.Refused = c.Buffer.Dropped(), c.Buffer.Refused()
	return s
}

// Run collects every Interval and writes the buffer, until ctx ends. A
// failed write keeps the points and is retried at a later round, with
// backoff doubling up to a minute; the log names the error, never the
// credentials.
func (c *Collector) Run(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	var retryAt time.Time
	backoff := time.Duration(0)
	for {
		if _, _, err := c.Collect(ctx); err != nil && ctx.Err() == nil {
			c.fail("collect", err, "collect: %v", err)
		} else if err == nil {
			c.recovered("collect")
		}
		if c.cfg.Write && time.Now().After(retryAt) {
			sent, err := c.flush(ctx)
			if err != nil && ctx.Err() == nil {
				backoff = min(max(2*backoff, c.cfg.Interval/4), time.Minute)
				retryAt = time.Now().Add(backoff)
				c.fail("write", err, "write (%d points waiting, %d dropped as the buffer was full; next try in %s): %v", c.Buffer.Len(), c.Buffer.Dropped(), backoff, err)
			} else if err == nil {
				if backoff > 0 {
					c.cfg.Log.Printf("InfluxDB takes points again: %d written", sent)
				}
				c.recovered("write")
				backoff, retryAt = 0, time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			c.summary()
			return
		case <-tick.C:
		}
	}
}

// summary logs what was not written, if anything, when the collector stops.
func (c *Collector) summary() {
	st := c.Stats()
	if st.Invalid+st.Refused+st.Dropped > 0 || c.Buffer.Len() > 0 {
		c.cfg.Log.Printf("stopping: %d points written; not written: %d waiting, %d with odd labels, %d refused by InfluxDB, %d dropped as the buffer was full", st.Written, c.Buffer.Len(), st.Invalid, st.Refused, st.Dropped)
	}
}

// repeatEvery is how often an error that repeats unchanged (but for its
// figures) is logged again, with the count of its repetitions: a node whose
// InfluxDB is away for a day logs a line every few minutes, not every round.
const repeatEvery = 10 * time.Minute

// failure is what was last logged of one kind of error.
type failure struct {
	key     string // the message without its figures
	at      time.Time
	repeats int
}

// fail logs an error of a kind (collect, write), redacted; the same error
// again (but for its figures) is only counted until repeatEvery has passed.
func (c *Collector) fail(kind string, err error, format string, args ...any) {
	msg := c.cfg.Influx.Redact(fmt.Sprintf(format, args...))
	key := digits.ReplaceAllString(c.cfg.Influx.Redact(err.Error()), "N")
	c.mu.Lock()
	c.stats.LastError = msg
	f := c.failures[kind]
	if f != nil && f.key == key && time.Since(f.at) < repeatEvery {
		f.repeats++
		c.mu.Unlock()
		return
	}
	if f != nil && f.key == key && f.repeats > 0 {
		msg += fmt.Sprintf(" (%d times more since %s)", f.repeats, f.at.UTC().Format(time.TimeOnly))
	}
	c.failures[kind] = &failure{key: key, at: time.Now()}
	c.mu.Unlock()
	c.cfg.Log.Print(msg)
}

// recovered forgets a kind's last error: the next one is logged at once.
func (c *Collector) recovered(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.failures[kind]; f != nil && f.repeats > 0 {
		c.cfg.Log.Printf("%s: no error now (the last one repeated %d times)", kind, f.repeats)
	}
	delete(c.failures, kind)
}

// Main is the collector command (the seed's flags -t, -c, -i, -q, plus
// -interval, -once and -docker). It returns the exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lhcbdirac-collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("t", "", "cAdvisor's host (port 8080 unless given); without it, the Docker Engine API")
	fs.StringVar(target, "target", "", "same as -t")
	cfgPath := fs.String("c", "", "JSON config: host, port, username, password, database, ssl (INFLUXDB_* variables override)")
	fs.StringVar(cfgPath, "config", "", "same as -c")
	write := fs.Bool("i", false, "write to InfluxDB (otherwise only print)")
	fs.BoolVar(write, "influx", false, "same as -i")
	quiet := fs.Bool("q", false, "do not print the collected points")
	fs.BoolVar(quiet, "quiet", false, "same as -q")
	interval := fs.Duration("interval", 30*time.Second, "time between readings")
	once := fs.Bool("once", false, "one reading, one write, then exit (as the seed's cron job)")
	docker := fs.String("docker", cmp.Or(getenv("DOCKER_HOST"), "/var/run/docker.sock"), "the Docker socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "collector: ", log.LstdFlags|log.LUTC)
	in, err := LoadInflux(*cfgPath, getenv)
	if err != nil {
		logger.Print(err)
		return 2
	}
	if *write && in.Database == "" {
		logger.Print("-i: no database (the config's \"database\" or INFLUXDB_DATABASE)")
		return 2
	}
	host := *target
	if host == "" {
		host = getenv("PARENT_HOST")
	}
	if host == "" || host == "unknown" {
		h, _ := os.Hostname()
		host, _, _ = strings.Cut(h, ".")
	}
	c := New(Config{Target: *target, Influx: in, Write: *write, Quiet: *quiet, Interval: *interval, Host: host, Docker: *docker, Out: stdout, Log: logger})
	logger.Printf("reading %s every %s; writing: %v (InfluxDB %s, database %q)", c.source(), *interval, *write, in.URL(), in.Database)
	if *once {
		if _, _, err := c.Collect(ctx); err != nil {
			logger.Print(err)
			return 1
		}
		if *write {
			if _, err := c.flush(ctx); err != nil {
				logger.Print(in.Redact(err.Error()))
				return 1
			}
		}
		c.summary()
		return 0
	}
	c.Run(ctx)
	return 0
}

func (c *Collector) source() string {
	if c.cadv != nil {
		return "cAdvisor at " + c.cadv.URL
	}
	return "the Docker Engine API at " + c.docker.Socket
}

// LoadInflux reads the seed's JSON config, then the INFLUXDB_* variables
// over it. Errors name the file and the key, never a value.
func LoadInflux(path string, getenv func(string) string) (Influx, error) {
	var in Influx
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return in, err
		}
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			return in, fmt.Errorf("%s: %v", path, err)
		}
		for k, v := range raw {
			if v == nil {
				continue // the seed's testConfig.json has every key null
			}
			var ok bool
			switch k {
			case "host":
				in.Host, ok = v.(string)
			case "username":
				in.Username, ok = v.(string)
			case "password":
				in.Password, ok = v.(string)
			case "database":
				in.Database, ok = v.(string)
			case "ssl":
				in.SSL, ok = v.(bool)
			case "port":
				var f float64
				f, ok = v.(float64)
				in.Port = int(f)
				ok = ok && f == float64(in.Port) && in.Port > 0 && in.Port < 65536
			default:
				return in, fmt.Errorf("%s: unknown key %q (have host, port, username, password, database, ssl)", path, k)
			}
			if !ok {
				return in, fmt.Errorf("%s: key %q has the wrong type", path, k)
			}
		}
	}
	hostFrom := fmt.Sprintf("%s: key \"host\"", path)
	for env, to := range map[string]*string{"INFLUXDB_HOST": &in.Host, "INFLUXDB_USERNAME": &in.Username, "INFLUXDB_PASSWORD": &in.Password, "INFLUXDB_DATABASE": &in.Database} {
		if v := getenv(env); v != "" {
			*to = v
			if env == "INFLUXDB_HOST" {
				hostFrom = env
			}
		}
	}
	// Here, where the host enters: a URL's credentials, scheme and port
	// become the separate settings, and the host a bare name.
	if err := in.takeHostApart(hostFrom); err != nil {
		return in, err
	}
	if v := getenv("INFLUXDB_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			return in, fmt.Errorf("INFLUXDB_PORT=%q: want a port", v)
		}
		in.Port = p
	}
	if v := getenv("INFLUXDB_SSL"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return in, fmt.Errorf("INFLUXDB_SSL=%q: want true or false", v)
		}
		in.SSL = b
	}
	return in, nil
}
