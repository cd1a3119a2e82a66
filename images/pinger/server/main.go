package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
)

// Main runs the pinger until ctx ends, then shuts down gracefully: the
// listener closes at once and pings under way get up to their timeout to
// finish. ready, when not nil, receives the listening address.
func Main(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready chan<- string) int {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("pinger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", env("PINGER_LISTEN", ":1234"), "address to serve HTTP on (env PINGER_LISTEN)")
	allow := fs.String("allow", getenv("PINGER_ALLOW"), "targets that may be pinged: HOST[:PORT|:LO-HI],… with *.domain and CIDR hosts (env PINGER_ALLOW, required)")
	cert := fs.String("cert", env("DIRAC_X509_HOST_CERT", "/opt/dirac/etc/grid-security/hostcert.pem"), "host certificate")
	key := fs.String("key", env("DIRAC_X509_HOST_KEY", "/opt/dirac/etc/grid-security/hostkey.pem"), "host key")
	caDir := fs.String("ca-dir", env("X509_CERT_DIR", "/opt/dirac/etc/grid-security/certificates"), "CA directory")
	timeout := fs.Duration("timeout", durationEnv(getenv("PINGER_TIMEOUT"), 10*time.Second), "per-ping timeout (env PINGER_TIMEOUT)")
	maxConc := fs.Int("max-concurrent", intEnv(getenv("PINGER_MAX_CONCURRENT"), 64), "pings in flight at once (env PINGER_MAX_CONCURRENT)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	fail := func(err error) int {
		log.Error("pinger cannot start", "error", err.Error())
		return 1
	}
	if *allow == "" {
		return fail(errors.New("no allow-list: set PINGER_ALLOW (or -allow) to the hosts and ports that may be pinged, e.g. *.cern.ch:9100-9300"))
	}
	al, err := ParseAllowList(*allow)
	if err != nil {
		return fail(err)
	}
	c, err := dips.LoadCertificate(*cert, *key)
	if err != nil {
		return fail(err)
	}
	roots, err := dips.LoadCADir(*caDir)
	if err != nil {
		return fail(err)
	}
	h, err := NewHandler(Config{
		Client:        &dips.Client{Certificate: &c, RootCAs: roots, HostCredentials: true, CallTimeout: *timeout, MaxReplySize: PingReplyLimit},
		Allow:         al,
		Timeout:       *timeout,
		MaxConcurrent: *maxConc,
		Logger:        log,
	})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(fmt.Errorf("listen %s: %w", *listen, err))
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: *timeout + 5*time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("pinger listening", "addr", ln.Addr().String(), "timeout", timeout.String(), "max_concurrent", *maxConc)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return fail(err)
	case <-ctx.Done():
	}
	log.Info("pinger shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), *timeout+time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "error", err.Error())
		return 1
	}
	return 0
}

func durationEnv(v string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return def
}

func intEnv(v string, def int) int {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n
	}
	return def
}

// PingReplyLimit bounds a ping reply: DIRAC's is a few hundred bytes, and
// a hostile target must not make the pinger hold more.
const PingReplyLimit = 1 << 20
