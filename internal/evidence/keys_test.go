package evidence_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
)

func TestKeyPairSignsAndVerifies(t *testing.T) {
	priv, pub, err := evidence.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(priv), "-----BEGIN PRIVATE KEY-----") || !strings.HasPrefix(string(pub), "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("want a PKCS#8 private and a PKIX public PEM:\n%s", pub)
	}
	s, err := evidence.LoadSigner("file", priv)
	if err != nil {
		t.Fatal(err)
	}
	// The base64 form a CI secret store may need loads the same key.
	s2, err := evidence.LoadSigner("env", []byte(base64.StdEncoding.EncodeToString(priv)))
	if err != nil || s2.KeyID() != s.KeyID() {
		t.Fatalf("base64 form: %v (%s vs %s)", err, s2.KeyID(), s.KeyID())
	}
	v, err := evidence.LoadVerifier("file", pub)
	if err != nil || v.KeyID() != s.KeyID() || !strings.HasPrefix(v.KeyID(), "SHA256:") {
		t.Fatalf("verifier %v %q %q", err, v.KeyID(), s.KeyID())
	}
	if string(s.PublicPEM()) != string(pub) {
		t.Fatal("the signer's public half is not the pair's")
	}
	if _, err := s.Seal(context.Background(), evidence.PayloadType, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRefusesOtherKeysWithoutQuotingThem(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	p384PEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	priv, pub, _ := evidence.GenerateKeyPair()
	body := strings.Split(string(priv), "\n")[1]
	for _, tc := range []struct {
		name, want string
		load       func() error
	}{
		{"P-384", "want P-256", func() error { _, err := evidence.LoadSigner("k", p384PEM); return err }},
		{"public as signing key", `"PUBLIC KEY" PEM block`, func() error { _, err := evidence.LoadSigner("k", pub); return err }},
		{"private as verify key", "a private key; give the public half", func() error { _, err := evidence.LoadVerifier("k", priv); return err }},
		{"not PEM", "neither a PEM block", func() error { _, err := evidence.LoadSigner("k", []byte("hello")); return err }},
		{"truncated", "not a valid PRIVATE KEY", func() error {
			b, _ := pem.Decode(priv)
			_, err := evidence.LoadSigner("k", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b.Bytes[:20]}))
			return err
		}},
		{"encrypted", "encrypted", func() error {
			_, err := evidence.LoadSigner("k", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: []byte("x")}))
			return err
		}},
	} {
		err := tc.load()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "k") {
			t.Errorf("%s: %v, want an error naming the source and saying %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), body[:20]) {
			t.Errorf("%s: the error quotes the key: %v", tc.name, err)
		}
	}
}

func TestWriteKeyPairNeverReplacesAKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	f, err := evidence.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(f.Private)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key %v mode %v, want 0600", err, st.Mode())
	}
	before, _ := os.ReadFile(f.Private)
	if _, err := evidence.WriteKeyPair(dir); err == nil || !strings.Contains(err.Error(), "not replacing") {
		t.Fatalf("a second WriteKeyPair must refuse: %v", err)
	}
	after, _ := os.ReadFile(f.Private)
	if string(before) != string(after) {
		t.Fatal("the key was replaced")
	}
	s, err := evidence.SignerFromSetting(f.Private) // a path works too
	if err != nil {
		t.Fatal(err)
	}
	v, err := evidence.VerifierFromSetting(f.Public)
	if err != nil || v.KeyID() != s.KeyID() {
		t.Fatalf("%v %s %s", err, v.KeyID(), s.KeyID())
	}
}
