// Package hostimages builds, without pulling anything, the two images the
// pipeline runs on the host's Docker: the Dagger engine (v0.19.7, compiled
// from the pinned tools module) and the embedded OCI registry (Debian's
// docker-registry). Both stand on one debootstrap tree, so the second costs
// almost nothing once the first exists.
package hostimages

import (
	"context"
	"path/filepath"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/toolmod"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// DaggerVersion is the engine, CLI and SDK version; all three must match.
const DaggerVersion = "v0.19.7"

// ToolsModuleDir is where the tools module lives, relative to the repository.
const ToolsModuleDir = "tools/dagger"

// Binary is one program built from the tools module.
type Binary = toolmod.Binary

// Binaries are the programs the engine image and the host need (ENGINE.md).
var Binaries = []Binary{
	{Name: "dagger", Package: "github.com/dagger/dagger/cmd/dagger"},
	{Name: "dagger-engine", Package: "github.com/dagger/dagger/cmd/engine"},
	{Name: "dagger-init", Package: "github.com/dagger/dagger/cmd/init"},
	{Name: "buildctl", Package: "github.com/dagger/dagger/cmd/dialstdio"},
	{Name: "dnsname", Package: "github.com/dagger/dagger/cmd/dnsname"},
}

// Tools is the directory holding the built binaries.
type Tools struct {
	Dir string
	Key string // hash of everything the binaries are built from
}

// Path returns the path of one built binary.
func (t Tools) Path(name string) string { return filepath.Join(t.Dir, name) }

// RepoRoot finds the repository root (the directory holding the tools module)
// from the working directory upwards, so targets and tests in sub-packages
// find it alike.
func RepoRoot() (string, error) { return toolmod.RepoRoot() }

// module is the Dagger tools module.
func module(repoRoot string) toolmod.Module {
	return toolmod.Module{
		Dir: filepath.Join(repoRoot, ToolsModuleDir), Cache: "dagger", Version: DaggerVersion,
		LDFlags: "-s -w -X github.com/dagger/dagger/engine.Version=" + DaggerVersion + " -X github.com/dagger/dagger/engine.Tag=" + DaggerVersion,
	}
}

// BuildTools compiles the Dagger binaries from the tools module into the
// cache, unless a build from identical inputs is already there. The go.sum is
// complete and committed, so the build asks no checksum database (the one
// public database lacks entries for Dagger's own modules).
func BuildTools(ctx context.Context, p *progress.Reporter, repoRoot string) (Tools, error) {
	m := module(repoRoot)
	key, err := m.Key()
	if err != nil {
		return Tools{}, err
	}
	dir, err := m.Build(ctx, p, Binaries...)
	if err != nil {
		return Tools{}, err
	}
	return Tools{Dir: dir, Key: key}, nil
}
