// Package enginecheck proves that the Dagger engine and the registry work
// together: a command runs in a container from a base pinned by digest, an
// image is published and its digest read back from the registry, and a service
// container is reached from a client container by its alias. It is the main
// job until the release exists, and the check behind the foundation's
// integration test.
package enginecheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"dagger.io/dagger"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// BaseSpec is the small base the check runs on: busybox brings an HTTP server
// and client, so no image has to be pulled from anywhere.
var BaseSpec = baseimage.Spec{Suite: "bookworm", Variant: "minbase", Packages: []string{"busybox"}}

// BaseRef is where the check's base is pushed in a registry.
func BaseRef(registry string) string {
	return registry + "/lhcbdirac-pipeline/base:bookworm-minbase-busybox"
}

// Result is what the check observed.
type Result struct {
	Base           string // base image, repo@digest
	Exec           string // output of the command run in the base
	Published      string // what Dagger reported: repo:tag@sha256:…
	PublishedRef   string // repo:tag
	DaggerDigest   string // digest part of Published
	RegistryDigest string // digest the registry serves for the tag
	ServiceReply   string // what the client read from the service
	Token          string // unique value threaded through publish and service
}

// Run performs the check. base must be pinned by digest.
func Run(ctx context.Context, c *dagger.Client, p *progress.Reporter, registry, base string) (Result, error) {
	r := Result{Base: base, Token: fmt.Sprintf("smoke-%d", time.Now().UnixNano())}

	step := p.Start("run a command in %s", base)
	out, err := c.Container().From(base).
		WithEnvVariable("SMOKE_TOKEN", r.Token). // defeats the cache: the command really runs
		WithExec([]string{"sh", "-c", `echo "debian $(cat /etc/debian_version) uid=$(id -u) token=$SMOKE_TOKEN"`}).
		Stdout(ctx)
	if err != nil {
		return r, step.Fail(fmt.Errorf("running a command in the base %s: %w", base, err))
	}
	r.Exec = strings.TrimSpace(out)
	step.Done()

	step = p.Start("publish to %s and read the digest back", registry)
	r.PublishedRef = registry + "/lhcbdirac-pipeline/engine-smoke:" + r.Token
	r.Published, err = c.Container().From(base).
		WithNewFile("/smoke-token", r.Token).
		Publish(ctx, r.PublishedRef)
	if err != nil {
		return r, step.Fail(fmt.Errorf("publishing %s: %w", r.PublishedRef, err))
	}
	if _, d, ok := strings.Cut(r.Published, "@"); ok {
		r.DaggerDigest = d
	}
	ref, err := name.ParseReference(r.PublishedRef)
	if err != nil {
		return r, step.Fail(err)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return r, step.Fail(fmt.Errorf("reading %s back from the registry: %w", r.PublishedRef, err))
	}
	r.RegistryDigest = desc.Digest.String()
	if r.RegistryDigest != r.DaggerDigest {
		return r, step.Fail(fmt.Errorf("digest mismatch for %s: Dagger reported %s, the registry serves %s", r.PublishedRef, r.DaggerDigest, r.RegistryDigest))
	}
	step.Done()

	step = p.Start("reach a service container by its alias")
	svc := c.Container().From(base).
		WithNewFile("/srv/index.html", r.Token).
		WithExposedPort(8080).
		AsService(dagger.ContainerAsServiceOpts{Args: []string{"busybox", "httpd", "-f", "-p", "8080", "-h", "/srv"}})
	reply, err := c.Container().From(base).
		WithServiceBinding("web", svc).
		WithEnvVariable("SMOKE_TOKEN", r.Token).
		WithExec([]string{"busybox", "wget", "-q", "-O", "-", "http://web:8080/index.html"}).
		Stdout(ctx)
	if err != nil {
		return r, step.Fail(fmt.Errorf("reaching the service by alias: %w", err))
	}
	r.ServiceReply = strings.TrimSpace(reply)
	if r.ServiceReply != r.Token {
		return r, step.Fail(fmt.Errorf("service replied %q, want %q", r.ServiceReply, r.Token))
	}
	step.Done()
	return r, nil
}

// Smoke proves the engine and the registry work, end to end, on a
// connection: it builds the check's base, then runs the check.
func Smoke(ctx context.Context, c *dagger.Client, registry string, p *progress.Reporter) (Result, error) {
	base, err := baseimage.Build(ctx, p, BaseSpec, BaseRef(registry))
	if err != nil {
		return Result{}, err
	}
	return Run(ctx, c, p, registry, base)
}
