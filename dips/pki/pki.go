// Package pki is a throw-away certificate authority, made at run time:
// host, user and RFC 3820 proxy certificates in the layout DIRAC reads
// (a hashed CA directory). The smoke tests give it to the services they
// start (a TEST CA, never a real one); dipstest's servers use it too.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips"
)

// PKI is a throw-away certificate authority writing into Dir:
// certificates/<hash>.0 (an OpenSSL-style CA directory), and key pairs.
type PKI struct {
	Dir    string
	CA     *x509.Certificate
	caKey  *rsa.PrivateKey
	serial int64
	// ECDSA makes Host and User issue P-256 keys instead of RSA-2048 (grid
	// certificates are RSA; ECDSA shows what the key type costs).
	ECDSA bool
}

// CADir is the hashed CA directory (grid-security/certificates).
func (p *PKI) CADir() string { return filepath.Join(p.Dir, "certificates") }

// NewPKI creates a CA named /C=ch/O=DIRAC/OU=Pipeline Test/CN=<name>.
func NewPKI(dir, name string) (*PKI, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"ch"}, Organization: []string{"DIRAC"}, OrganizationalUnit: []string{"Pipeline Test"}, CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(der)
	p := &PKI{Dir: dir, CA: ca, caKey: key, serial: 1}
	if err := os.MkdirAll(p.CADir(), 0o755); err != nil {
		return nil, err
	}
	hashed := filepath.Join(p.CADir(), fmt.Sprintf("%08x.0", SubjectHash(ca)))
	if err := writePEM(hashed, 0o644, pemCert(der)); err != nil {
		return nil, err
	}
	// The companions a real grid CA directory holds; loaders must skip them.
	os.WriteFile(strings.TrimSuffix(hashed, ".0")+".signing_policy", []byte("access_id_CA X509 '/C=ch/O=DIRAC'\n"), 0o644)
	return p, nil
}

// KeyPair is a certificate and key written as PEM files.
type KeyPair struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
	Key               crypto.Signer
}

// Host issues a host certificate whose SANs are the given names and IPs,
// written as <dir>/<base>cert.pem and <base>key.pem.
func (p *PKI) Host(base string, names ...string) (KeyPair, error) {
	tmpl := p.template(pkix.Name{Country: []string{"ch"}, Organization: []string{"DIRAC"}, OrganizationalUnit: []string{"Pipeline Test"}, CommonName: names[0]})
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	return p.issue(base, tmpl)
}

// User issues a user certificate /C=ch/O=DIRAC/OU=Pipeline Test/CN=<cn>.
func (p *PKI) User(base, cn string) (KeyPair, error) {
	tmpl := p.template(pkix.Name{Country: []string{"ch"}, Organization: []string{"DIRAC"}, OrganizationalUnit: []string{"Pipeline Test"}, CommonName: cn})
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return p.issue(base, tmpl)
}

// Other returns a second, unrelated CA: certificates it issues are unknown
// to p's CA directory, as a foreign grid CA would be.
func (p *PKI) Other(dir string) (*PKI, error) { return NewPKI(dir, "Other CA") }

func (p *PKI) template(subject pkix.Name) *x509.Certificate {
	p.serial++
	return &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
}

func (p *PKI) issue(base string, tmpl *x509.Certificate) (KeyPair, error) {
	var key crypto.Signer
	var err error
	if p.ECDSA {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return KeyPair{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, key.Public(), p.caKey)
	if err != nil {
		return KeyPair{}, err
	}
	cert, _ := x509.ParseCertificate(der)
	kp := KeyPair{CertFile: filepath.Join(p.Dir, base+"cert.pem"), KeyFile: filepath.Join(p.Dir, base+"key.pem"), Cert: cert, Key: key}
	if err := writePEM(kp.CertFile, 0o644, pemCert(der)); err != nil {
		return KeyPair{}, err
	}
	return kp, writePEM(kp.KeyFile, 0o600, pemKey(key))
}

// Proxy makes an RFC 3820 proxy of a user (or host) certificate, as
// dirac-proxy-init does: subject = issuer + CN=<serial>, a critical
// proxyCertInfo with the inherit-all policy, signed by the user's key. The
// file holds the proxy certificate, its key, then the user certificate.
// validFor may be negative to make an expired proxy.
func Proxy(owner KeyPair, path string, validFor time.Duration) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	serial := time.Now().UnixNano() & 0x7fffffff
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(owner.Cert.RawSubject, &rdns); err != nil {
		return "", err
	}
	rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: fmt.Sprint(serial)}})
	rawSubject, err := asn1.Marshal(rdns)
	if err != nil {
		return "", err
	}
	// ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER OPTIONAL,
	//   proxyPolicy SEQUENCE { policyLanguage OID (id-ppl-inheritAll), policy OCTET STRING OPTIONAL } }
	pci, err := asn1.Marshal(struct {
		Policy struct{ Language asn1.ObjectIdentifier }
	}{struct{ Language asn1.ObjectIdentifier }{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 21, 1}}})
	if err != nil {
		return "", err
	}
	now := time.Now()
	notBefore, notAfter := now.Add(-5*time.Minute), now.Add(validFor)
	if validFor < 0 {
		notBefore = now.Add(2 * validFor)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(serial),
		RawSubject:      rawSubject,
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtraExtensions: []pkix.Extension{{Id: dips.OIDProxyCertInfo, Critical: true, Value: pci}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, owner.Cert, key.Public(), owner.Key)
	if err != nil {
		return "", err
	}
	return path, writePEM(path, 0o600, pemCert(der), pemKey(key), pemCert(owner.Cert.Raw))
}

// SubjectHash is OpenSSL's X509_NAME_hash (the <hash> of <hash>.0 names):
// the first four bytes, little-endian, of the SHA-1 of the subject's
// canonical encoding (values as UTF8String, lowercased, spaces folded; the
// RDN sets without the outer SEQUENCE header).
func SubjectHash(c *x509.Certificate) uint32 {
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil {
		return 0
	}
	var canon []byte
	for _, rdn := range rdns {
		type atv struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		set := make([]atv, 0, len(rdn))
		for _, a := range rdn {
			v := strings.Join(strings.Fields(strings.ToLower(fmt.Sprint(a.Value))), " ")
			set = append(set, atv{a.Type, asn1.RawValue{Tag: asn1.TagUTF8String, Class: asn1.ClassUniversal, Bytes: []byte(v)}})
		}
		b, err := asn1.MarshalWithParams(set, "set")
		if err != nil {
			return 0
		}
		canon = append(canon, b...)
	}
	sum := sha1.Sum(canon)
	return binary.LittleEndian.Uint32(sum[:4])
}

func pemCert(der []byte) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: der} }
func pemKey(k crypto.Signer) *pem.Block {
	if ec, ok := k.(*ecdsa.PrivateKey); ok {
		b, _ := x509.MarshalECPrivateKey(ec)
		return &pem.Block{Type: "EC PRIVATE KEY", Bytes: b}
	}
	return &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))}
}

func writePEM(path string, mode os.FileMode, blocks ...*pem.Block) error {
	var b []byte
	for _, blk := range blocks {
		b = append(b, pem.EncodeToMemory(blk)...)
	}
	return os.WriteFile(path, b, mode)
}
