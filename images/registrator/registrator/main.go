package registrator

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/client"
)

// The environment the registrator reads.
const (
	EnvListen    = "REGISTRATOR_LISTEN"   // address of /info, /metrics, /healthz; default :$PORT_HTTP, else :8080
	EnvResync    = "REGISTRATOR_RESYNC"   // full reconciliation period (5m)
	EnvFile      = "REGISTRATOR_ENV_FILE" // KEY=VALUE lines (credentials) read before the rest
	EnvEtcd      = "ETCD_ENDPOINTS"       // comma-separated; unset: no etcd
	EnvPrefix    = "ETCD_PREFIX"
	EnvLeaseTTL  = "ETCD_LEASE_TTL"
	EnvConsul    = "CONSUL_HTTP_ADDR" // Consul's own variable; unset: no Consul
	EnvConsulTok = "CONSUL_HTTP_TOKEN"

	EnvPinger           = "REGISTRATOR_PINGER_URL"         // the pinger's base URL: check_http must be <it>/ping?…
	EnvCheckAllow       = "REGISTRATOR_CHECK_ALLOW"        // space-separated further URL prefixes a check_http may be under
	EnvCheckMinInterval = "REGISTRATOR_CHECK_MIN_INTERVAL" // floor of check_interval (5s)
	EnvMaxAnswer        = "REGISTRATOR_MARATHON_MAX_MIB"   // bound of one Marathon answer, MiB (32)
)

// Main runs the registrator with its configuration from getenv (and the
// file EnvFile names: credentials reach it from a host file mounted
// read-only, never from the app definition). It returns the exit code.
func Main(ctx context.Context, getenv func(string) string, stderr io.Writer) int {
	logger := log.New(stderr, "registrator: ", log.LstdFlags|log.LUTC)
	getenv, err := withEnvFile(getenv)
	if err != nil {
		logger.Print(err)
		return 2
	}
	cfg, listen, err := ConfigFromEnv(getenv)
	if err != nil {
		logger.Print(err)
		return 2
	}
	cfg.Log = logger
	r, err := New(cfg)
	if err != nil {
		logger.Print(err)
		return 1
	}
	defer r.Close()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		logger.Print(err)
		return 1
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	logger.Printf("serving /info, /metrics and /healthz on %s; etcd %v, consul %q", l.Addr(), cfg.EtcdEndpoints, cfg.ConsulAddr)
	r.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return 0
}

// ConfigFromEnv reads the configuration; errors name the variable.
func ConfigFromEnv(getenv func(string) string) (Config, string, error) {
	var cfg Config
	u := getenv(client.URLEnv)
	if u == "" {
		return cfg, "", fmt.Errorf("%s is not set", client.URLEnv)
	}
	mc := client.Config{URLs: u, User: getenv(client.UserEnv), Password: getenv(client.PasswordEnv), Token: getenv(client.TokenEnv)}
	if v := getenv(EnvMaxAnswer); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			return cfg, "", fmt.Errorf("%s=%q: want a size in MiB from 1 to 4096", EnvMaxAnswer, v)
		}
		mc.MaxAnswer = int64(n) << 20
	}
	c, err := client.New(mc)
	if err != nil {
		return cfg, "", err
	}
	cfg.Marathon = c
	// Credentials stay out of logs and /healthz, however an answer
	// echoes them: as given, and as a Basic header carries them.
	user, pass := getenv(client.UserEnv), getenv(client.PasswordEnv)
	cfg.Secrets = []string{pass, getenv(client.TokenEnv), getenv(EnvConsulTok)}
	if user != "" {
		cfg.Secrets = append(cfg.Secrets, base64.StdEncoding.EncodeToString([]byte(user+":"+pass)), user+":"+pass)
	}
	if e := getenv(EnvEtcd); e != "" {
		for _, ep := range strings.Split(e, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				if strings.Contains(ep, "@") {
					return cfg, "", fmt.Errorf("%s: an endpoint holds credentials (user:password@); give endpoints only", EnvEtcd)
				}
				cfg.EtcdEndpoints = append(cfg.EtcdEndpoints, ep)
			}
		}
	}
	cfg.EtcdPrefix = getenv(EnvPrefix)
	if cfg.EtcdPrefix != "" && !strings.HasPrefix(cfg.EtcdPrefix, "/") {
		return cfg, "", fmt.Errorf("%s=%q: want an absolute key prefix such as /lhcbdirac/discovery", EnvPrefix, cfg.EtcdPrefix)
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
		min  time.Duration
	}{{EnvLeaseTTL, &cfg.LeaseTTL, 5 * time.Second}, {EnvResync, &cfg.Resync, time.Second}} {
		if v := getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t < d.min {
				return cfg, "", fmt.Errorf("%s=%q: want a duration of at least %s", d.name, v, d.min)
			}
			*d.to = t
		}
	}
	cfg.ConsulAddr, cfg.ConsulToken = getenv(EnvConsul), getenv(EnvConsulTok)
	if strings.Contains(cfg.ConsulAddr, "@") {
		return cfg, "", fmt.Errorf("%s holds credentials (user:password@); the token goes in %s", EnvConsul, EnvConsulTok)
	}
	cfg.Checks.Pinger, cfg.Checks.Allow = getenv(EnvPinger), strings.Fields(getenv(EnvCheckAllow))
	if _, err := parseCheckPolicy(cfg.Checks, EnvPinger, EnvCheckAllow); err != nil {
		return cfg, "", err
	}
	if v := getenv(EnvCheckMinInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return cfg, "", fmt.Errorf("%s=%q: want a duration of at least 1s (Consul's own floor)", EnvCheckMinInterval, v)
		}
		cfg.Checks.MinInterval = d
	}
	listen := getenv(EnvListen)
	if listen == "" {
		listen = ":8080"
		if p := getenv("PORT_HTTP"); p != "" {
			listen = ":" + p
		}
	}
	if len(cfg.EtcdEndpoints) == 0 && cfg.ConsulAddr == "" {
		return cfg, "", fmt.Errorf("neither %s nor %s is set: nothing to register into", EnvEtcd, EnvConsul)
	}
	return cfg, listen, nil
}

// withEnvFile layers the KEY=VALUE lines of $REGISTRATOR_ENV_FILE under
// the environment (the environment wins).
func withEnvFile(getenv func(string) string) (func(string) string, error) {
	path := getenv(EnvFile)
	if path == "" {
		return getenv, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvFile, err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			// The line may hold a secret: name its number only.
			return nil, fmt.Errorf("%s line %d: want KEY=VALUE", path, n)
		}
		vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return vars[k]
	}, nil
}
