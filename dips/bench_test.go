package dips_test

import (
	"context"
	"crypto/tls"
	"sort"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
)

// BenchmarkPingLatency: one complete ping (TCP connect, TLS 1.3 handshake
// with the host certificate, proposal, arguments, result) against the test
// server on loopback. Reports p50 and p99 in milliseconds (target p50 ≤ 2 ms).
func BenchmarkPingLatency(b *testing.B) {
	b.Run("rsa2048", func(b *testing.B) {
		s := startServer(b, tls.VersionTLS13)
		benchPing(b, client(b, "host"), s.URL("localhost", svc))
	})
	b.Run("ecdsa-p256", func(b *testing.B) {
		pki, err := dipstest.NewPKI(b.TempDir(), "EC CA")
		if err != nil {
			b.Fatal(err)
		}
		pki.ECDSA = true
		host, err := pki.Host("host", "localhost")
		if err != nil {
			b.Fatal(err)
		}
		s, err := dipstest.Start(dipstest.Options{HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: []string{svc}})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		cert, _ := dips.LoadCertificate(host.CertFile, host.KeyFile)
		roots, _ := dips.LoadCADir(pki.CADir())
		benchPing(b, &dips.Client{Certificate: &cert, RootCAs: roots, HostCredentials: true}, s.URL("localhost", svc))
	})
}

func benchPing(b *testing.B, c *dips.Client, url string) {
	ctx := context.Background()
	if _, err := c.Ping(ctx, url); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := c.Ping(ctx, url); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
