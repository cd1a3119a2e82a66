// Package selfping is dirac-self-ping: the command Marathon runs inside a
// DIRAC service container as its COMMAND health check. Like the seed's
// dirac_self_ping.py it takes <port>/<System>/<Service>, pings
// dips://localhost:<port>/<System>/<Service> (https://… with -protocol
// https, for DIRAC's Tornado services) with the host certificate and
// exits 0 when the service answers S_OK, 1 otherwise; unlike it, it needs
// no DIRAC environment, prints one line saying why it failed, and bounds its
// total time below Marathon's health-check timeout.
package selfping

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
)

// Defaults: DIRAC's locations inside the image.
const (
	DefaultCert  = "/opt/dirac/etc/grid-security/hostcert.pem"
	DefaultKey   = "/opt/dirac/etc/grid-security/hostkey.pem"
	DefaultCADir = "/opt/dirac/etc/grid-security/certificates"
)

// Run executes the command and returns its exit code. getenv supplies the
// environment (DIRAC's own variables for the certificate locations).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dirac-self-ping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cert := fs.String("cert", firstSet(getenv("DIRAC_X509_HOST_CERT"), DefaultCert), "host certificate (env DIRAC_X509_HOST_CERT)")
	key := fs.String("key", firstSet(getenv("DIRAC_X509_HOST_KEY"), DefaultKey), "host key (env DIRAC_X509_HOST_KEY)")
	caDir := fs.String("ca-dir", firstSet(getenv("X509_CERT_DIR"), DefaultCADir), "CA directory (env X509_CERT_DIR)")
	host := fs.String("host", "localhost", "host to ping")
	serverName := fs.String("server-name", "", "name the service certificate must carry (default: the host certificate's own name)")
	timeout := fs.Duration("timeout", 15*time.Second, "bound on the whole check (keep it below Marathon's timeoutSeconds)")
	verbose := fs.Bool("v", false, "print the ping reply")
	protocol := fs.String("protocol", "dips", "dips, or https for DIRAC's Tornado services (POST method=ping)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dirac-self-ping [-protocol https] [flags] <port>/<System>/<Service>")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 1
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dirac-self-ping: "+format+"\n", a...)
		return 1
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	port, service, err := parseTarget(fs.Arg(0))
	if err != nil {
		return fail("%v", err)
	}
	if *protocol != "dips" && *protocol != "https" {
		return fail("-protocol %q: want dips or https", *protocol)
	}
	c, err := dips.LoadCertificate(*cert, *key)
	if err != nil {
		return fail("%v", err)
	}
	roots, err := dips.LoadCADir(*caDir)
	if err != nil {
		return fail("%v", err)
	}
	name := *serverName
	if name == "" && c.Leaf != nil {
		name = ownName(c.Leaf.DNSNames, c.Leaf.Subject.CommonName)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &dips.Client{Certificate: &c, RootCAs: roots, HostCredentials: true, ServerName: name, CallTimeout: *timeout, MaxReplySize: 1 << 20} // a ping reply is a few hundred bytes
	url := fmt.Sprintf("%s://%s:%d/%s", *protocol, *host, port, service)
	ping := client.Ping
	if *protocol == "https" {
		ping = client.PingHTTPS
	}
	v, err := ping(ctx, url)
	if err != nil {
		return fail("%s: %v", url, err)
	}
	if *verbose {
		fmt.Fprintf(stdout, "%s OK: version %s, service uptime %v s\n", url, v.String("version"), mustGet(v, "service uptime"))
	}
	return 0
}

// parseTarget reads <port>/<System>/<Service>.
func parseTarget(arg string) (int, string, error) {
	p, svc, ok := strings.Cut(arg, "/")
	port, err := strconv.Atoi(p)
	if !ok || err != nil || port < 1 || port > 65535 {
		return 0, "", fmt.Errorf("argument %q: want <port>/<System>/<Service> with a port from 1 to 65535", arg)
	}
	sys, comp, ok := strings.Cut(svc, "/")
	if !ok || sys == "" || comp == "" || strings.Contains(comp, "/") {
		return 0, "", fmt.Errorf("argument %q: want <port>/<System>/<Service>", arg)
	}
	return port, svc, nil
}

// ownName is the name the host certificate is issued for: its first DNS
// name, else its CN.
func ownName(dns []string, cn string) string {
	if len(dns) > 0 {
		return dns[0]
	}
	return cn
}

func firstSet(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func mustGet(d *dips.Dict, k string) any {
	v, _ := d.Get(k)
	return v
}
