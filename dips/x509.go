package dips

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// OIDProxyCertInfo marks an RFC 3820 proxy certificate.
var OIDProxyCertInfo = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 14}

// LoadCertificate loads a host certificate and key (PEM files).
func LoadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s / key %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

// LoadProxy loads an RFC 3820 proxy file: the proxy certificate, its key,
// then the issuing certificates, all sent as the chain.
func LoadProxy(path string) (tls.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("proxy %s: %w", path, err)
	}
	c, err := tls.X509KeyPair(b, b)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("proxy %s: %w", path, err)
	}
	return c, nil
}

// caFile matches OpenSSL's hashed names (<hash>.<n>) and plain .pem files.
var caFile = regexp.MustCompile(`(^[0-9a-f]{8}\.[0-9]+$)|(\.pem$)`)

// LoadCADir loads the CA certificates of an OpenSSL-style directory
// (grid-security/certificates): hashed <hash>.0 files and *.pem; the
// .signing_policy, .crl_url, .info and .r0 files beside them are skipped.
func LoadCADir(dir string) (*x509.CertPool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("CA directory %s: %w", dir, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for _, e := range entries {
		if e.IsDir() || !caFile.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if pool.AppendCertsFromPEM(b) {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("CA directory %s holds no CA certificate (<hash>.0 or *.pem)", dir)
	}
	return pool, nil
}

// IsProxy reports whether c is a proxy certificate: it carries the RFC 3820
// proxyCertInfo extension, or (legacy Globus forms) its subject is the
// issuer's plus one trailing CN that is "proxy", "limited proxy" or a number.
// The CN test matters: a user certificate's subject often extends its CA's.
func IsProxy(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDProxyCertInfo) {
			return true
		}
	}
	subj, iss := c.RawSubject, c.RawIssuer
	if len(subj) <= len(iss) {
		return false
	}
	var s, i asn1.RawValue
	if _, err := asn1.Unmarshal(subj, &s); err != nil {
		return false
	}
	if _, err := asn1.Unmarshal(iss, &i); err != nil {
		return false
	}
	// The subject's RDN sequence starts with the issuer's RDNs and adds one CN.
	if !bytes.HasPrefix(s.Bytes, i.Bytes) {
		return false
	}
	var extra asn1.RawValue
	rest, err := asn1.Unmarshal(s.Bytes[len(i.Bytes):], &extra)
	if err != nil || len(rest) != 0 {
		return false
	}
	cn := c.Subject.CommonName
	if cn == "proxy" || cn == "limited proxy" {
		return true
	}
	for _, r := range cn {
		if r < '0' || r > '9' {
			return false
		}
	}
	return cn != ""
}

// VerifiedPeer is who a verified chain belongs to.
type VerifiedPeer struct {
	Identity *x509.Certificate // the end-entity (first non-proxy) certificate
	DN       string            // its subject, in OpenSSL one-line form
	IsProxy  bool
}

// VerifyChain verifies a peer chain that may start with proxies, as DIRAC's
// servers do (OpenSSL with proxy certificates allowed): Go's x509.Verify
// refuses proxies (an unknown critical extension, a non-CA issuer), so the
// first non-proxy certificate is verified against roots and each proxy's
// signature and validity are checked against the certificate after it.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) (VerifiedPeer, error) {
	if len(chain) == 0 {
		return VerifiedPeer{}, errors.New("no client certificate")
	}
	idx := 0
	for idx < len(chain) && IsProxy(chain[idx]) {
		idx++
	}
	if idx == len(chain) {
		return VerifiedPeer{}, errors.New("chain holds only proxies, no end-entity certificate")
	}
	for i := 0; i < idx; i++ {
		p, issuer := chain[i], chain[i+1]
		if now.Before(p.NotBefore) || now.After(p.NotAfter) {
			return VerifiedPeer{}, fmt.Errorf("proxy %q is not valid now (valid %s to %s)", DN(p), p.NotBefore.Format(time.RFC3339), p.NotAfter.Format(time.RFC3339))
		}
		if !bytes.Equal(p.RawIssuer, issuer.RawSubject) {
			return VerifiedPeer{}, fmt.Errorf("proxy %q is not issued by %q", DN(p), DN(issuer))
		}
		if err := issuer.CheckSignature(p.SignatureAlgorithm, p.RawTBSCertificate, p.Signature); err != nil {
			return VerifiedPeer{}, fmt.Errorf("proxy %q: bad signature: %w", DN(p), err)
		}
	}
	id := chain[idx]
	inter := x509.NewCertPool()
	for _, c := range chain[idx+1:] {
		inter.AddCert(c)
	}
	if _, err := id.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return VerifiedPeer{}, fmt.Errorf("certificate %q: %w", DN(id), err)
	}
	return VerifiedPeer{Identity: id, DN: DN(id), IsProxy: idx > 0}, nil
}

// DN renders a subject the way DIRAC shows DNs (/C=ch/O=DIRAC/CN=…).
func DN(c *x509.Certificate) string {
	var b strings.Builder
	for _, rdn := range c.Subject.ToRDNSequence() {
		for _, atv := range rdn {
			name := shortNames[atv.Type.String()]
			if name == "" {
				name = atv.Type.String()
			}
			fmt.Fprintf(&b, "/%s=%v", name, atv.Value)
		}
	}
	return b.String()
}

var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"0.9.2342.19200300.100.1.25": "DC", "1.2.840.113549.1.9.1": "emailAddress",
}

// ParsePEMChain reads every CERTIFICATE block of a PEM file, in order.
func ParsePEMChain(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE block")
	}
	return out, nil
}
