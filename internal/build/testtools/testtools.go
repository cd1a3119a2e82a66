// Package testtools is the programs the tests run and build from tools
// modules of their own (tools/<name>): Consul, cAdvisor, cosign. Their
// definitions live here, apart from the test helpers that start them, so
// the test command can build them in the background while `go test`
// compiles and runs the first packages: a cold build of Consul alone takes
// minutes, and the test that needs it would otherwise hold one of
// `go test`'s slots while it waits (toolmod's lock makes a test that asks
// for a tool being built wait for that build, then find it made).
package testtools

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/toolmod"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Tool is one program of a tools module.
type Tool struct {
	Name    string // the module's directory under tools/, the binary's name
	Version string // the upstream release the module pins
	Package string // the Go package of the command
	// Toolchain, when set, is the Go toolchain it is built with (toolmod).
	Toolchain string
}

var (
	// Consul is the agent the discovery tests register services in.
	Consul = Tool{Name: "consul", Version: "v1.22.6", Package: "github.com/hashicorp/consul"}
	// CAdvisor is the last cAdvisor whose command the module proxy
	// serves. Go 1.21's flag package refuses its start-up code (a flag set
	// before klog defines it), so it is built with Go 1.20's toolchain,
	// which the module proxy serves too.
	CAdvisor = Tool{Name: "cadvisor", Version: "v0.36.0", Package: "github.com/google/cadvisor", Toolchain: "go1.20.14"}
	// Cosign verifies the release's signatures and attestations.
	Cosign = Tool{Name: "cosign", Version: "v3.1.3", Package: "github.com/sigstore/cosign/v3/cmd/cosign"}
)

// All are the tools in the order the background build makes them: cosign
// first, as the pipeline's package — the longest, started first — needs it
// in its first test (a run that built it last found that test building it
// itself, 6 min 21 s, while the package's other tests waited behind it);
// then Consul (images/registrator), the longest build; cAdvisor last, the
// shortest (images/mesos-slave/metrics builds it itself if it gets there
// first: the lock is per tool).
var All = []Tool{Cosign, Consul, CAdvisor}

// Build compiles the tool (once per tools module) and returns its path.
func (t Tool) Build(ctx context.Context, p *progress.Reporter) (string, error) {
	root, err := toolmod.RepoRoot()
	if err != nil {
		return "", err
	}
	m := toolmod.Module{Dir: filepath.Join(root, "tools", t.Name), Cache: t.Name, Version: t.Version, LDFlags: "-s -w", Toolchain: t.Toolchain}
	dir, err := m.Build(ctx, p, toolmod.Binary{Name: t.Name, Package: t.Package})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, t.Name), nil
}

// BuildAll builds every tool, one after another (each go build keeps both
// cores busy already), and says which failed.
func BuildAll(ctx context.Context, p *progress.Reporter) error {
	var errs []error
	for _, t := range All {
		if _, err := t.Build(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", t.Name, t.Version, err))
		}
	}
	return errors.Join(errs...)
}
