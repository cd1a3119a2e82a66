package evidence

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// SigningKeyEnv holds the release's private key (PEM, or that PEM in
// base64 for CI secret stores that mangle newlines).
const SigningKeyEnv = "LHCBDIRAC_SIGNING_KEY"

// VerifyKeyEnv holds the public key deployments verify against (PEM, or
// a path to it).
const VerifyKeyEnv = "LHCBDIRAC_VERIFY_KEY"

// Key files WriteKeyPair makes.
const (
	PrivateKeyFile = "lhcbdirac-signing.key" // PKCS#8 PEM, mode 0600
	PublicKeyFile  = "lhcbdirac-signing.pub" // PKIX PEM, what `cosign verify --key` takes
)

// GenerateKeyPair makes a new ECDSA P-256 release key: the private key as
// a PKCS#8 PEM ("PRIVATE KEY"), the public key as a PKIX PEM ("PUBLIC
// KEY"), the form cosign's --key reads.
func GenerateKeyPair() (privatePEM, publicPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating an ECDSA P-256 key: %w", err)
	}
	privatePEM, err = cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the private key: %w", err)
	}
	publicPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the public key: %w", err)
	}
	return privatePEM, publicPEM, nil
}

// KeyFiles are the paths WriteKeyPair wrote.
type KeyFiles struct{ Private, Public string }

// WriteKeyPair generates a pair into dir (made if missing) as
// PrivateKeyFile (0600) and PublicKeyFile (0644). It refuses to replace an
// existing private key: losing a release key is not undone by a rerun.
func WriteKeyPair(dir string) (KeyFiles, error) {
	files := KeyFiles{Private: filepath.Join(dir, PrivateKeyFile), Public: filepath.Join(dir, PublicKeyFile)}
	if _, err := os.Stat(files.Private); err == nil {
		return files, fmt.Errorf("%s exists: not replacing a signing key (move it away to make a new pair)", files.Private)
	}
	priv, pub, err := GenerateKeyPair()
	if err != nil {
		return files, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return files, err
	}
	f, err := os.OpenFile(files.Private, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return files, err
	}
	if _, err := f.Write(priv); err != nil {
		f.Close()
		return files, fmt.Errorf("writing %s: %w", files.Private, err)
	}
	if err := f.Close(); err != nil {
		return files, fmt.Errorf("writing %s: %w", files.Private, err)
	}
	return files, os.WriteFile(files.Public, pub, 0o644)
}

// Signer signs statements and image signatures with the release key.
type Signer struct {
	sv    *signature.ECDSASignerVerifier
	keyID string
	pub   []byte // PKIX DER
}

// LoadSigner reads an ECDSA P-256 private key: PKCS#8 ("PRIVATE KEY") or
// SEC 1 ("EC PRIVATE KEY") PEM, or either PEM base64-encoded. what names
// where the bytes came from (a file, SigningKeyEnv) for errors, which
// never quote the key.
func LoadSigner(what string, key []byte) (*Signer, error) {
	block, err := decodePEM(key)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", what, err)
	}
	var parsed any
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		return nil, fmt.Errorf("signing key %s: an encrypted %q PEM block; the pipeline takes an unencrypted PKCS#8 key (keep it in a secret store, not a password)", what, block.Type)
	default:
		return nil, fmt.Errorf("signing key %s: a %q PEM block, want \"PRIVATE KEY\" (PKCS#8) or \"EC PRIVATE KEY\"", what, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: not a valid %s: %w", what, block.Type, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: a %T, want an ECDSA P-256 key", what, parsed)
	}
	if priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s: ECDSA on %s, want P-256", what, priv.Curve.Params().Name)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", what, err)
	}
	s := &Signer{sv: sv}
	if s.pub, err = x509.MarshalPKIXPublicKey(priv.Public()); err != nil {
		return nil, err
	}
	if s.keyID, err = dsse.SHA256KeyID(priv.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// SignerFromSetting loads the value of SigningKeyEnv (a PEM, or the path
// of a file holding one), as the configuration boundary read it.
func SignerFromSetting(v string) (*Signer, error) {
	if v == "" {
		return nil, fmt.Errorf("%s is not set: give it the release's private key (PEM), or make a pair for local use with `go run mage.go keys`", SigningKeyEnv)
	}
	if !strings.Contains(v, "-----BEGIN") {
		if b, err := os.ReadFile(v); err == nil {
			return LoadSigner(v, b)
		}
	}
	return LoadSigner(SigningKeyEnv, []byte(v))
}

// KeyID is the key's SHA256 fingerprint (the DSSE keyid cosign computes).
func (s *Signer) KeyID() string { return s.keyID }

// PublicPEM is the public half, as GenerateKeyPair writes it.
func (s *Signer) PublicPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: s.pub})
}

// Verifier returns a verifier for the signer's own public key.
func (s *Signer) Verifier() *Verifier {
	v, err := LoadVerifier("signer", s.PublicPEM())
	if err != nil {
		panic(err) // our own encoding of a key we just parsed
	}
	return v
}

func (s *Signer) sign(message []byte) ([]byte, error) {
	return s.sv.SignMessage(bytes.NewReader(message))
}

// Verifier checks signatures against one public key.
type Verifier struct {
	v     *signature.ECDSAVerifier
	pub   *ecdsa.PublicKey
	keyID string
}

// LoadVerifier reads an ECDSA P-256 public key, a PKIX ("PUBLIC KEY") PEM
// as GenerateKeyPair and cosign write it. what names its origin in errors.
func LoadVerifier(what string, key []byte) (*Verifier, error) {
	block, err := decodePEM(key)
	if err != nil {
		return nil, fmt.Errorf("verify key %s: %w", what, err)
	}
	if block.Type != "PUBLIC KEY" {
		if strings.Contains(block.Type, "PRIVATE") {
			return nil, fmt.Errorf("verify key %s: a private key; give the public half (%s)", what, PublicKeyFile)
		}
		return nil, fmt.Errorf("verify key %s: a %q PEM block, want \"PUBLIC KEY\"", what, block.Type)
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("verify key %s: %w", what, err)
	}
	pub, ok := parsed.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("verify key %s: a %T, want an ECDSA P-256 public key", what, parsed)
	}
	v, err := signature.LoadECDSAVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("verify key %s: %w", what, err)
	}
	id, err := dsse.SHA256KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v, pub: pub, keyID: id}, nil
}

// VerifierFromSetting loads the value of VerifyKeyEnv: a PEM, or the path
// of one.
func VerifierFromSetting(v string) (*Verifier, error) {
	if v == "" {
		return nil, fmt.Errorf("%s is not set: give it the release's public key (PEM or a path to %s)", VerifyKeyEnv, PublicKeyFile)
	}
	if !strings.Contains(v, "-----BEGIN") {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", VerifyKeyEnv, err)
		}
		return LoadVerifier(v, b)
	}
	return LoadVerifier(VerifyKeyEnv, []byte(v))
}

// KeyID is the key's SHA256 fingerprint.
func (v *Verifier) KeyID() string { return v.keyID }

func (v *Verifier) verifySig(message, sig []byte) error {
	return v.v.VerifySignature(strings.NewReader(string(sig)), bytes.NewReader(message))
}

// decodePEM takes one PEM block, or one in base64; its errors say what
// the bytes are not, never what they are.
func decodePEM(b []byte) (*pem.Block, error) {
	text := strings.TrimSpace(string(b))
	if text == "" {
		return nil, errors.New("empty")
	}
	if !strings.HasPrefix(text, "-----BEGIN") {
		dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(dec)), "-----BEGIN") {
			return nil, errors.New("neither a PEM block nor a base64-encoded one")
		}
		text = strings.TrimSpace(string(dec))
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("a PEM header without a well-formed PEM block")
	}
	return block, nil
}

// dsseSigner adapts the Signer to go-securesystemslib's DSSE interfaces.
type dsseSigner struct{ s *Signer }

func (d dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) { return d.s.sign(data) }
func (d dsseSigner) KeyID() (string, error)                              { return d.s.keyID, nil }

type dsseVerifier struct{ v *Verifier }

func (d dsseVerifier) Verify(_ context.Context, data, sig []byte) error {
	return d.v.verifySig(data, sig)
}
func (d dsseVerifier) KeyID() (string, error)   { return d.v.keyID, nil }
func (d dsseVerifier) Public() crypto.PublicKey { return d.v.pub }
