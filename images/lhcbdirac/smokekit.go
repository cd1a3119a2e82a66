package lhcbdirac

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/render"
)

// Setup is the DIRAC setup of the smoke-test dirac.cfg.
const Setup = "LHCb-Smoke"

// Kit is what the service containers mount in place of the host's files:
// a TEST CA, a host certificate for every name the services are reached by,
// and a dirac.cfg giving each service its port.
type Kit struct {
	Dir          string // holds dirac.cfg and grid-security/
	GridSecurity string
	DiracCfg     string
}

// Alias is the name a service is reached by on the Dagger network.
func Alias(name string) string {
	return "svc-" + strings.ToLower(strings.ReplaceAll(name, "/", "-"))
}

// kitMaxAge keeps the test CA (valid 48 h) comfortably fresh.
const kitMaxAge = 24 * time.Hour

// NewKit makes (or reuses, while it is fresh and for the same services)
// the kit. Reuse keeps a warm release's inputs identical, so Dagger can
// answer from its cache.
func NewKit(apps []render.App) (Kit, error) {
	names := []string{"localhost", "pinger"}
	for _, a := range apps {
		names = append(names, Alias(a.Service.Name))
	}
	sort.Strings(names[2:])
	cfg := DiracCfg(apps)
	h := sha256.Sum256([]byte(strings.Join(names, ",") + "\n" + cfg))
	base, err := cachedir.Sub("smoke-kit")
	if err != nil {
		return Kit{}, err
	}
	dir := filepath.Join(base, hex.EncodeToString(h[:8]))
	k := Kit{Dir: dir, GridSecurity: filepath.Join(dir, "grid-security"), DiracCfg: filepath.Join(dir, "dirac.cfg")}
	unlock, err := cachedir.Lock(dir + ".lock")
	if err != nil {
		return k, err
	}
	defer unlock()
	if st, err := os.Stat(filepath.Join(dir, ".complete")); err == nil && time.Since(st.ModTime()) < kitMaxAge {
		return k, nil
	}
	os.RemoveAll(dir)
	pki, err := dipstest.NewPKI(k.GridSecurity, "LHCbDIRAC smoke-test CA")
	if err != nil {
		return k, err
	}
	if _, err := pki.Host("host", names...); err != nil {
		return k, err
	}
	if err := os.WriteFile(k.DiracCfg, []byte(cfg), 0o644); err != nil {
		return k, err
	}
	return k, os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644)
}

// DiracCfg is the smoke-test configuration: one setup, one instance per
// system, each service's port where DIRAC looks for it
// (/Systems/<System>/<instance>/Services/<Service>/Port).
func DiracCfg(apps []render.App) string {
	systems := map[string][]render.App{}
	for _, a := range apps {
		systems[a.Service.System] = append(systems[a.Service.System], a)
	}
	keys := make([]string, 0, len(systems))
	for k := range systems {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "# dirac.cfg of the smoke tests (written by the pipeline)\nDIRAC\n{\n  Setup = %s\n  Setups\n  {\n    %s\n    {\n", Setup, Setup)
	for _, s := range keys {
		fmt.Fprintf(&b, "      %s = Smoke\n", s)
	}
	b.WriteString("    }\n  }\n  Security\n  {\n    UseServerCertificate = yes\n  }\n}\nSystems\n{\n")
	for _, s := range keys {
		fmt.Fprintf(&b, "  %s\n  {\n    Smoke\n    {\n      Services\n      {\n", s)
		for _, a := range systems[s] {
			fmt.Fprintf(&b, "        %s\n        {\n          Port = %d\n        }\n", a.Service.Service, a.Service.Port)
		}
		b.WriteString("      }\n    }\n  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}
