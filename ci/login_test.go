package ci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestLoginWritesTheDockerConfigClientsRead(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"other.example":{"auth":"eDp5"}},"credsStore":""}`), 0o600)
	if err := Login(dir, "registry.example:5000", "robot", "s3cr3t"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "config.json"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var cfg map[string]map[string]any
	json.Unmarshal(b, &cfg)
	if _, ok := cfg["auths"]["other.example"]; !ok {
		t.Fatal("other registries' credentials were lost")
	}
	// go-containerregistry, which pushes, finds them.
	t.Setenv("DOCKER_CONFIG", dir)
	reg, _ := name.NewRegistry("registry.example:5000")
	a, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := a.Authorization()
	if c.Username != "robot" || c.Password != "s3cr3t" {
		t.Fatalf("%+v", c)
	}
	if err := Login(dir, "r", "", "p"); err == nil || !strings.Contains(err.Error(), "REGISTRY_USER") {
		t.Fatal(err)
	}
}
