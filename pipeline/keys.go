package pipeline

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// The release key: what signs the evidence every image carries, and what
// a deploy checks it with.

// localKeys is where the key pair for local use lives (go run mage.go
// keys): outside the clone, beside the other caches.
func localKeys() (evidence.KeyFiles, error) {
	dir, err := cachedir.Sub("keys")
	if err != nil {
		return evidence.KeyFiles{}, err
	}
	return evidence.KeyFiles{Private: filepath.Join(dir, evidence.PrivateKeyFile), Public: filepath.Join(dir, evidence.PublicKeyFile)}, nil
}

// SigningKey is the release's signer: LHCBDIRAC_SIGNING_KEY's key, else the
// local pair (made on first use, for local releases), and where it came
// from — never the key itself.
func SigningKey(ev settings.Evidence) (*evidence.Signer, string, error) {
	if ev.SigningKey != "" {
		s, err := evidence.SignerFromSetting(ev.SigningKey)
		return s, evidence.SigningKeyEnv, err
	}
	files, err := localKeys()
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(files.Private); err != nil {
		if _, err := evidence.WriteKeyPair(filepath.Dir(files.Private)); err != nil {
			return nil, "", err
		}
	}
	b, err := os.ReadFile(files.Private)
	if err != nil {
		return nil, "", err
	}
	s, err := evidence.LoadSigner(files.Private, b)
	return s, "the local key pair " + files.Private + " (LHCBDIRAC_SIGNING_KEY is not set)", err
}

// VerifyKey is what a deploy checks evidence with: LHCBDIRAC_VERIFY_KEY's
// key, else the public half of the signing key the settings name, else the
// local pair's.
func VerifyKey(ev settings.Evidence) (*evidence.Verifier, string, error) {
	switch {
	case ev.VerifyKey != "":
		v, err := evidence.VerifierFromSetting(ev.VerifyKey)
		return v, evidence.VerifyKeyEnv, err
	case ev.SigningKey != "":
		s, err := evidence.SignerFromSetting(ev.SigningKey)
		if err != nil {
			return nil, "", err
		}
		return s.Verifier(), "the public half of " + evidence.SigningKeyEnv, nil
	}
	files, err := localKeys()
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(files.Public)
	if err != nil {
		return nil, "", fmt.Errorf("no key to verify the images' evidence with: set %s to the release's public key (or, for local releases, make a pair with go run mage.go keys)", evidence.VerifyKeyEnv)
	}
	v, err := evidence.LoadVerifier(files.Public, b)
	return v, "the local key pair's " + files.Public + " (LHCBDIRAC_VERIFY_KEY is not set)", err
}

// RunKeys is `mage keys`: a key pair for local use, and where it is.
func RunKeys(out io.Writer) error {
	files, err := localKeys()
	if err != nil {
		return err
	}
	if _, err := os.Stat(files.Private); err == nil {
		fmt.Fprintf(out, "the local key pair is there already (not replaced):\n  %s\n  %s\n", files.Private, files.Public)
	} else if files, err = evidence.WriteKeyPair(filepath.Dir(files.Private)); err != nil {
		return err
	} else {
		fmt.Fprintf(out, "made a key pair for local use:\n  %s (private, 0600)\n  %s (public)\n", files.Private, files.Public)
	}
	fmt.Fprintf(out, "releases here sign with it when %s is not set, and deploys verify with its public half when %s is not set.\n", evidence.SigningKeyEnv, evidence.VerifyKeyEnv)
	fmt.Fprintf(out, "For CI: %s=<a path or the PEM, as a masked secret>, %s=%s; cosign verify --key %s …\n", evidence.SigningKeyEnv, evidence.VerifyKeyEnv, files.Public, files.Public)
	return nil
}
