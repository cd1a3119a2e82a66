package hostimages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// RootfsSpec is the Debian tree under both host images: what the engine needs
// to run containers (runc, CNI, iptables, dnsmasq, fuse-overlayfs) and to
// fetch git sources, plus Debian's registry server.
var RootfsSpec = baseimage.Spec{
	Suite:   "bookworm",
	Variant: "minbase",
	Packages: []string{
		"runc", "dnsmasq-base", "iptables", "containernetworking-plugins", "git",
		"ca-certificates", "pigz", "xz-utils", "openssh-client", "fuse-overlayfs",
		"docker-registry",
	},
}

// imageRecipe changes when the layout of either image changes.
const imageRecipe = "2"

// registryConfig replaces Debian's default, which turns on htpasswd auth. The
// listen address comes from REGISTRY_HTTP_ADDR at run time.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
`

// Images names the engine image and the CLI that matches it, by tags that
// encode their inputs: a changed input gives a new tag, an unchanged one
// finds the old image.
type Images struct {
	Engine string
	CLI    string // the dagger CLI on the host, matching the engine
}

// Refs computes the engine tags without building anything.
func Refs(t Tools) Images {
	h := sha256.Sum256([]byte(imageRecipe + "\n" + t.Key + "\n" + RootfsSpec.Key()))
	key := hex.EncodeToString(h[:])[:12]
	return Images{Engine: "lhcbdirac-pipeline/dagger-engine:" + DaggerVersion + "-" + key, CLI: t.Path("dagger")}
}

// RegistryRef is the registry image's tag; it needs no Dagger binary, so an
// external engine with the embedded registry builds nothing of Dagger's.
func RegistryRef() string {
	h := sha256.Sum256([]byte(imageRecipe + "\nregistry\n" + RootfsSpec.Key()))
	return "lhcbdirac-pipeline/registry:" + hex.EncodeToString(h[:])[:12]
}

// rootLayer returns the Debian tree and its layer, building what is missing.
func rootLayer(ctx context.Context, p *progress.Reporter) (string, v1.Layer, error) {
	dir, err := baseimage.Rootfs(ctx, p, RootfsSpec)
	if err != nil {
		return "", nil, err
	}
	step := p.Start("layer from the Debian tree")
	l, err := baseimage.DirLayer(dir, dir+".layer.tar.gz")
	return dir, l, step.End(err)
}

func imagesLock() (string, func(), error) {
	dir, err := cachedir.Sub("images")
	if err != nil {
		return "", nil, err
	}
	unlock, err := cachedir.Lock(filepath.Join(dir, "load.lock"))
	return dir, unlock, err
}

// Ensure builds the Dagger binaries and loads the engine image into Docker,
// doing only what is missing.
func Ensure(ctx context.Context, p *progress.Reporter, repoRoot string) (Images, error) {
	if err := dockercli.Check(ctx); err != nil {
		return Images{}, err
	}
	tools, err := BuildTools(ctx, p, repoRoot)
	if err != nil {
		return Images{}, err
	}
	refs := Refs(tools)
	dir, unlock, err := imagesLock()
	if err != nil {
		return Images{}, err
	}
	defer unlock()
	step := p.Start("engine image %s", refs.Engine)
	if have, err := dockercli.ImageExists(ctx, refs.Engine); err != nil || have {
		if err != nil {
			return Images{}, step.Fail(err)
		}
		step.Cached()
		return refs, nil
	}
	rootfs, layer, err := rootLayer(ctx, p)
	if err != nil {
		return Images{}, step.Fail(err)
	}
	img, err := engineImage(tools, rootfs, layer, filepath.Join(dir, "engine-"+tools.Key+".tar.gz"))
	if err == nil {
		err = load(ctx, refs.Engine, img)
	}
	return refs, step.End(err)
}

// RegistryImage loads the registry image into Docker unless it is there.
func RegistryImage(ctx context.Context, p *progress.Reporter) (string, error) {
	if err := dockercli.Check(ctx); err != nil {
		return "", err
	}
	ref := RegistryRef()
	dir, unlock, err := imagesLock()
	if err != nil {
		return "", err
	}
	defer unlock()
	step := p.Start("registry image %s", ref)
	if have, err := dockercli.ImageExists(ctx, ref); err != nil || have {
		if err != nil {
			return "", step.Fail(err)
		}
		step.Cached()
		return ref, nil
	}
	_, layer, err := rootLayer(ctx, p)
	if err != nil {
		return "", step.Fail(err)
	}
	cfgLayer, err := baseimage.FilesLayer([]baseimage.File{
		{Path: "/etc/lhcbdirac-registry/config.yml", Data: []byte(registryConfig), Mode: 0o644},
	}, filepath.Join(dir, "registry-config.tar.gz"))
	var img v1.Image
	if err == nil {
		img, err = baseimage.Image(v1.Config{
			Entrypoint: []string{"/usr/bin/docker-registry", "serve", "/etc/lhcbdirac-registry/config.yml"},
			Labels:     map[string]string{"org.lhcbdirac.pipeline.role": "registry"},
		}, layer, cfgLayer)
	}
	if err == nil {
		err = load(ctx, ref, img)
	}
	return ref, step.End(err)
}

// engineImage lays the Dagger binaries over the Debian tree as ENGINE.md
// describes: the engine as entrypoint, dagger-init, buildctl (the dial-stdio
// shim the CLI execs into), runc where the engine looks for it, and the CNI
// plugins in /opt/cni/bin.
func engineImage(t Tools, rootfs string, rootLayer v1.Layer, layerPath string) (v1.Image, error) {
	files := []baseimage.File{
		{Path: "/usr/local/bin/dagger-engine", Source: t.Path("dagger-engine"), Mode: 0o755},
		{Path: "/usr/local/bin/dagger-init", Source: t.Path("dagger-init"), Mode: 0o755},
		{Path: "/usr/local/bin/buildctl", Source: t.Path("buildctl"), Mode: 0o755},
		{Path: "/usr/local/bin/runc", Link: "/usr/sbin/runc"},
		{Path: "/opt/cni/bin/dnsname", Source: t.Path("dnsname"), Mode: 0o755},
		{Path: "/etc/dagger", Mode: 0o755},
		{Path: "/var/lib/dagger", Mode: 0o755},
	}
	plugins, err := os.ReadDir(filepath.Join(rootfs, "usr/lib/cni"))
	if err != nil {
		return nil, fmt.Errorf("CNI plugins missing from the Debian tree (containernetworking-plugins): %w", err)
	}
	names := make([]string, 0, len(plugins))
	for _, pl := range plugins {
		names = append(names, pl.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, baseimage.File{Path: "/opt/cni/bin/" + n, Link: "/usr/lib/cni/" + n})
	}
	layer, err := baseimage.FilesLayer(files, layerPath)
	if err != nil {
		return nil, err
	}
	return baseimage.Image(v1.Config{
		Entrypoint: []string{"/usr/local/bin/dagger-engine"},
		Volumes:    map[string]struct{}{"/var/lib/dagger": {}},
		Labels:     map[string]string{"org.lhcbdirac.pipeline.role": "dagger-engine", "org.opencontainers.image.version": DaggerVersion},
	}, rootLayer, layer)
}

// load streams the image into `docker load` without a temporary file.
func load(ctx context.Context, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
	_, err = dockercli.RunInput(ctx, pr, "load", "--quiet")
	pr.CloseWithError(io.ErrClosedPipe)
	return err
}
