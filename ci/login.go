package ci

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Login records registry credentials where every registry client (and the
// push stage) finds them: the Docker config file in dir ($DOCKER_CONFIG),
// mode 0600. The CI files pass the masked secret variables through the
// environment; nothing is echoed or put on a command line.
func Login(dir, registry, user, password string) error {
	if registry == "" || user == "" || password == "" {
		return fmt.Errorf("registry login: REGISTRY, REGISTRY_USER and REGISTRY_PASSWORD must all be set (as masked CI variables)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, "config.json")
	cfg := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	auths, _ := cfg["auths"].(map[string]any)
	if auths == nil {
		auths = map[string]any{}
	}
	auths[registry] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	cfg["auths"] = auths
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
