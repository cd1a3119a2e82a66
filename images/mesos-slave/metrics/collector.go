package metrics

import (
	"context"
	"encoding/json"
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
	BufferMax int           // points kept while InfluxDB is away
	Out       io.Writer     // where collected points are printed (unless Quiet)
	Log       *log.Logger
}

// Collector reads and writes on an interval.
type Collector struct {
	cfg    Config
	cadv   *CAdvisor
	docker *Docker
	prev   map[string]*Sample
	Buffer Buffer
	writer Writer

	mu    sync.Mutex
	stats Stats
}

// Stats are a collector's counters.
type Stats struct {
	Rounds, Containers, Points, Written uint64
	Dropped                             uint64
	LastError                           string
}

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
	c := &Collector{cfg: cfg, prev: map[string]*Sample{}, writer: Writer{Target: cfg.Influx}}
	c.Buffer.Max = cfg.BufferMax
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
// It returns the containers read and the points made.
func (c *Collector) Collect(ctx context.Context) (containers, points int, err error) {
	var enc lineprotocol.Encoder
	enc.SetPrecision(lineprotocol.Nanosecond)
	var lines [][]byte
	emit := func(prev, cur *Sample) {
		before := len(enc.Bytes())
		n := Points(&enc, c.cfg.Host, prev, cur)
		points += n
		for _, l := range strings.SplitAfter(string(enc.Bytes()[before:]), "\n") {
			if l != "" {
				lines = append(lines, []byte(l))
			}
		}
	}
	seen := map[string]bool{}
	if c.cadv != nil {
		pairs, err := c.cadv.Containers(ctx)
		if err != nil {
			return 0, 0, err
		}
		for _, p := range pairs {
			if p[1] != nil {
				emit(p[0], p[1])
				containers++
			}
		}
		if m, err := c.cadv.Machine(ctx); err == nil && m[1] != nil {
			emit(m[0], m[1])
		}
	} else {
		samples, rerr := c.docker.Containers(ctx)
		if rerr != nil && samples == nil {
			return 0, 0, rerr
		}
		err = rerr // some containers unread: the others are still written
		for _, s := range samples {
			emit(c.prev[s.ID], s)
			c.prev[s.ID] = s
			seen[s.ID] = true
			containers++
		}
		for id := range c.prev {
			if !seen[id] {
				delete(c.prev, id)
			}
		}
	}
	if !c.cfg.Quiet {
		for _, l := range lines {
			c.cfg.Out.Write(l)
		}
	}
	if c.cfg.Write {
		c.Buffer.Add(lines)
	}
	c.mu.Lock()
	c.stats.Rounds++
	c.stats.Containers += uint64(containers)
	c.stats.Points += uint64(points)
	c.mu.Unlock()
	return containers, points, err
}

// Stats returns the counters so far.
func (c *Collector) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Dropped = c.Buffer.Dropped()
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
			c.fail("collect: %v", err)
		}
		if c.cfg.Write && time.Now().After(retryAt) {
			sent, err := c.Buffer.Flush(ctx, &c.writer, 5000)
			c.mu.Lock()
			c.stats.Written += uint64(sent)
			c.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				backoff = min(max(2*backoff, c.cfg.Interval/4), time.Minute)
				retryAt = time.Now().Add(backoff)
				c.fail("write (%d points waiting, %d dropped; next try in %s): %v", c.Buffer.Len(), c.Buffer.Dropped(), backoff, err)
			} else if err == nil {
				if backoff > 0 {
					c.cfg.Log.Printf("InfluxDB takes points again: %d written", sent)
				}
				backoff, retryAt = 0, time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *Collector) fail(format string, args ...any) {
	msg := redact(fmt.Sprintf(format, args...), c.cfg.Influx.Password)
	c.cfg.Log.Print(msg)
	c.mu.Lock()
	c.stats.LastError = msg
	c.mu.Unlock()
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
	docker := fs.String("docker", or(getenv("DOCKER_HOST"), "/var/run/docker.sock"), "the Docker socket")
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
			if _, err := c.Buffer.Flush(ctx, &c.writer, 5000); err != nil {
				logger.Print(redact(err.Error(), in.Password))
				return 1
			}
		}
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
	for env, to := range map[string]*string{"INFLUXDB_HOST": &in.Host, "INFLUXDB_USERNAME": &in.Username, "INFLUXDB_PASSWORD": &in.Password, "INFLUXDB_DATABASE": &in.Database} {
		if v := getenv(env); v != "" {
			*to = v
		}
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

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
