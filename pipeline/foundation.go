package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
)

// The foundation alone: engine:*, registry:*, base:build, smoke.

// RunEngineUp is `mage engine:up`: the engine provisioned, the variables
// the SDK needs printed.
func RunEngineUp(ctx context.Context, st settings.Settings, out io.Writer) error {
	p := progress.New(nil)
	if _, err := Open(ctx, st, p, Needs{}); err != nil {
		return err
	}
	ep, err := engine.Up(ctx, p)
	if err != nil {
		return err
	}
	p.Summary("engine:up")
	for _, kv := range ep.Env() {
		fmt.Fprintln(out, "export "+kv)
	}
	return nil
}

// RunEngineDown is `mage engine:down`.
func RunEngineDown(ctx context.Context, st settings.Settings) error {
	st.Host.Apply()
	return engine.Down(ctx)
}

// RunEngineStatus is `mage engine:status`.
func RunEngineStatus(ctx context.Context, st settings.Settings, out io.Writer) error {
	st.Host.Apply()
	s, err := engine.Status(ctx)
	if err == nil {
		fmt.Fprintln(out, s)
	}
	return err
}

// RunRegistryUp is `mage registry:up`.
func RunRegistryUp(ctx context.Context, st settings.Settings, out io.Writer) error {
	s, err := Open(ctx, st, nil, Needs{Registry: true})
	if err == nil {
		fmt.Fprintln(out, s.Registry)
	}
	return err
}

// RunRegistryDown is `mage registry:down`.
func RunRegistryDown(ctx context.Context, st settings.Settings) error {
	st.Host.Apply()
	return registry.Down(ctx, registry.Embedded(), false)
}

// RunRegistryStatus is `mage registry:status`.
func RunRegistryStatus(ctx context.Context, st settings.Settings, out io.Writer) error {
	st.Host.Apply()
	s, err := registry.Status(ctx)
	if err == nil {
		fmt.Fprintln(out, s)
	}
	return err
}

// RunBaseBuild is `mage base:build NAME PKGS`: a Debian base made with
// debootstrap, pushed as <registry>/lhcbdirac-pipeline/base:<name>.
func RunBaseBuild(ctx context.Context, st settings.Settings, name, packages string, out io.Writer) error {
	if err := baseimage.CheckTag(name); err != nil {
		return fmt.Errorf("base name: %w", err)
	}
	spec := baseimage.Spec{Suite: "bookworm", Variant: "minbase"}
	for _, pkg := range strings.Split(packages, ",") {
		if pkg = strings.TrimSpace(pkg); pkg != "" {
			spec.Packages = append(spec.Packages, pkg)
		}
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	p := progress.New(nil)
	s, err := Open(ctx, st, p, Needs{Registry: true})
	if err != nil {
		return err
	}
	ref, err := baseimage.Build(ctx, p, spec, s.Registry+"/lhcbdirac-pipeline/base:"+name)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, ref)
	return nil
}

// RunSmoke is `mage smoke`: the foundation checked end to end.
func RunSmoke(ctx context.Context, st settings.Settings, out io.Writer) error {
	p := progress.New(nil)
	s, err := Open(ctx, st, p, Needs{Engine: true})
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := enginecheck.Smoke(ctx, s.Client, s.Registry, p)
	p.Summary("smoke")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "base:        %s\nexec:        %s\npublished:   %s\nregistry:    %s\nservice:     %s\n",
		r.Base, r.Exec, r.Published, r.RegistryDigest, r.ServiceReply)
	return nil
}
