// Package engine gives the pipeline a Dagger engine. Three modes, in order:
//
//   - external: the user already points Dagger at an engine with
//     _EXPERIMENTAL_DAGGER_RUNNER_HOST; nothing is built or started.
//   - dagger: Dagger's own provisioning (a machine with internet, where the SDK
//     downloads its CLI and engine image); chosen with LHCBDIRAC_ENGINE=dagger,
//     or when Dagger's own engine container already runs here.
//   - local (the default here, where nothing can be downloaded): the engine is
//     compiled from the pinned tools module, its image is built on a
//     debootstrap tree, and it runs in a Docker container with the flags that
//     work on these machines.
//
// The engine only ever runs inside its container: dagger-engine assumes it owns
// the machine it runs on (it rewrites /etc/resolv.conf).
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/dockercli"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// Environment variables read or set.
const (
	RunnerHostEnv = "_EXPERIMENTAL_DAGGER_RUNNER_HOST"
	CLIBinEnv     = "_EXPERIMENTAL_DAGGER_CLI_BIN"
	ModeEnv       = "LHCBDIRAC_ENGINE"           // local | dagger (default: detect)
	NameEnv       = "LHCBDIRAC_ENGINE_CONTAINER" // container name in local mode
	// InsecureRegistriesEnv lists extra host:port registries the engine may
	// reach over plain HTTP, comma-separated (the embedded one is always there).
	InsecureRegistriesEnv = "LHCBDIRAC_INSECURE_REGISTRIES"
)

// Mode says where the engine comes from.
type Mode string

const (
	ModeExternal Mode = "external"
	ModeDagger   Mode = "dagger"
	ModeLocal    Mode = "local"
)

const (
	defaultName = "lhcbdirac-dagger-engine"
	stateVolume = "lhcbdirac-dagger-state"
	specLabel   = "org.lhcbdirac.pipeline.engine-spec"
	// daggerOwnContainer is the container Dagger's own provisioning starts.
	daggerOwnContainer = "dagger-engine-" + hostimages.DaggerVersion
)

// Config is how the engine is chosen and run; the configuration boundary
// (internal/settings) fills it from the variables named above, once, and
// hands it over with Configure. The zero value is the defaults.
type Config struct {
	Mode               string // local, dagger, or "" to detect
	RunnerHost         string // an engine of the user's own
	CLIBin             string // the Dagger CLI for it
	Container          string // the local engine's container name
	CacheMax, MinFree  string // the cache's garbage collection bounds
	InsecureRegistries []string
	// EmbeddedRegistryAddr is where the embedded registry listens.
	EmbeddedRegistryAddr string
}

var (
	cfgMu sync.RWMutex
	cfg   Config
)

// Configure sets the engine's configuration for this process: the engine is
// one per machine, so its settings are too.
func Configure(c Config) {
	cfgMu.Lock()
	defer cfgMu.Unlock()
	cfg = c
}

func current() Config {
	cfgMu.RLock()
	defer cfgMu.RUnlock()
	return cfg
}

// Endpoint is what the Go SDK needs to reach the engine.
type Endpoint struct {
	Mode       Mode
	RunnerHost string // empty in dagger mode
	CLIBin     string // empty in external and dagger modes
	Container  string // local mode only
	Image      string // local mode only
}

// Env returns the variables to export, as KEY=VALUE lines.
func (e Endpoint) Env() []string {
	var env []string
	if e.RunnerHost != "" {
		env = append(env, RunnerHostEnv+"="+e.RunnerHost)
	}
	if e.CLIBin != "" {
		env = append(env, CLIBinEnv+"="+e.CLIBin)
	}
	return env
}

// Export sets the variables in this process, for dagger.Connect and the
// tests it starts, and configures this process to use the endpoint.
func (e Endpoint) Export() {
	c := current()
	if e.RunnerHost != "" {
		os.Setenv(RunnerHostEnv, e.RunnerHost)
		c.RunnerHost = e.RunnerHost
	}
	if e.CLIBin != "" {
		os.Setenv(CLIBinEnv, e.CLIBin)
		c.CLIBin = e.CLIBin
	}
	Configure(c)
}

// StateVolume is the local engine's state (its cache): one per engine
// container, so an engine of another name starts from an empty cache.
func StateVolume() string {
	if n := ContainerName(); n != defaultName {
		return stateVolume + "-" + n
	}
	return stateVolume
}

// ContainerName is the local engine's container name.
func ContainerName() string {
	if n := current().Container; n != "" {
		return n
	}
	return defaultName
}

// DetectMode decides the mode without building or starting anything.
func DetectMode(ctx context.Context) (Mode, error) {
	if host := current().RunnerHost; host != "" && host != "docker-container://"+ContainerName() {
		return ModeExternal, nil
	}
	switch m := current().Mode; m {
	case "local":
		return ModeLocal, nil
	case "dagger":
		return ModeDagger, nil
	case "":
	default:
		return "", fmt.Errorf("%s=%q: expected local or dagger", ModeEnv, m)
	}
	if c, err := dockercli.InspectContainer(ctx, daggerOwnContainer); err == nil && c.Running {
		return ModeDagger, nil
	}
	return ModeLocal, nil
}

// Up returns a working engine endpoint, provisioning a local engine when that
// is the mode. A second call with nothing changed only inspects Docker.
func Up(ctx context.Context, p *progress.Reporter) (Endpoint, error) {
	mode, err := DetectMode(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	switch mode {
	case ModeExternal:
		c := current()
		p.Infof("engine: using %s=%s (nothing to provision)", RunnerHostEnv, c.RunnerHost)
		return Endpoint{Mode: mode, RunnerHost: c.RunnerHost, CLIBin: c.CLIBin}, nil
	case ModeDagger:
		p.Infof("engine: Dagger's own provisioning (%s)", ModeEnv)
		return Endpoint{Mode: mode}, nil
	}
	root, err := hostimages.RepoRoot()
	if err != nil {
		return Endpoint{}, err
	}
	imgs, err := hostimages.Ensure(ctx, p, root)
	if err != nil {
		return Endpoint{}, err
	}
	name := ContainerName()
	ep := Endpoint{Mode: ModeLocal, RunnerHost: "docker-container://" + name, CLIBin: imgs.CLI, Container: name, Image: imgs.Engine}
	if err := ensureContainer(ctx, p, ep); err != nil {
		return Endpoint{}, err
	}
	return ep, nil
}

// GC bounds the engine's cache. Dagger's defaults are shares of the
// disk's size, and the disks here report a size far above the space they
// really have: the cache filled the disk (62 GB) before the default policy
// acted. Absolute figures, with LHCBDIRAC_ENGINE_CACHE_MAX and
// LHCBDIRAC_ENGINE_MIN_FREE to change them ("40GB", "20%").
var GC = map[string]string{"reservedSpace": "10GB", "maxUsedSpace": "40GB", "minFreeSpace": "15GB"}

// engineConfig is /etc/dagger/engine.json: the registries the engine may
// reach over plain HTTP (the embedded one, on loopback) and the cache's
// garbage collection.
func engineConfig() ([]byte, error) {
	regs := map[string]map[string]bool{}
	addrs := []string{EmbeddedRegistryAddr()}
	for _, a := range current().InsecureRegistries {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		regs[a] = map[string]bool{"http": true}
	}
	gc := map[string]string{}
	for k, v := range GC {
		gc[k] = v
	}
	c := current()
	for env, set := range map[string]struct{ key, val string }{"LHCBDIRAC_ENGINE_CACHE_MAX": {"maxUsedSpace", c.CacheMax}, "LHCBDIRAC_ENGINE_MIN_FREE": {"minFreeSpace", c.MinFree}} {
		key := set.key
		if v := strings.TrimSpace(set.val); v != "" {
			if !diskSpace.MatchString(v) {
				return nil, fmt.Errorf("%s=%q: want bytes, a size such as 40GB, or a share such as 20%%", env, v)
			}
			gc[key] = v
		}
	}
	return json.MarshalIndent(map[string]any{"registries": regs, "gc": gc}, "", "  ")
}

var diskSpace = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([kKmMgGtT][iI]?[bB]|[bB]|%)?$`)

// EmbeddedRegistryAddr is where the embedded registry listens (host network).
func EmbeddedRegistryAddr() string {
	if a := current().EmbeddedRegistryAddr; a != "" {
		return a
	}
	return "127.0.0.1:5000"
}

// runArgs are the docker run flags that work here: --privileged fails on
// these machines (no CAP_SYS_RESOURCE in the bounding set), so every other
// capability is added instead. Host networking lets the engine reach the
// registry on loopback while its own containers keep their private bridge.
//
// The host's extra CA certificates (HostCADir: a TLS-intercepting proxy's,
// a site's) are mounted where Dagger looks for them; Dagger installs them
// into every container it runs, so builds behind such a proxy reach the
// package indexes without a flag.
func runArgs(ep Endpoint, configPath, caDir string) []string {
	args := []string{
		"run", "-d", "--name", ep.Container,
		"--network", "host",
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined",
		"--security-opt", "systempaths=unconfined",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
		"-v", StateVolume() + ":/var/lib/dagger",
		"-v", configPath + ":/etc/dagger/engine.json:ro",
		"--restart", "unless-stopped",
	}
	if caDir != "" {
		args = append(args, "-v", caDir+":/usr/local/share/ca-certificates:ro")
	}
	return args
}

// engineArgs are dagger-engine's own flags for the engine in container.
// Every engine runs on the host's network, where its containers' bridge
// (dagger0) and the DNS server on it (port 53 of the bridge's address)
// would be the same for two engines: a second engine (the benchmark's
// fresh one, beside the user's) could not start. An engine of another
// name gets a bridge and an address range of its own, both derived from
// its name; the default engine keeps Dagger's defaults.
func engineArgs(container string) []string {
	if container == defaultName || container == "" {
		return nil
	}
	h := sha256.Sum256([]byte(container))
	return []string{
		"--network-name", "dg" + hex.EncodeToString(h[:4]), // the bridge is <name>0: 11 of Linux's 15 characters
		"--network-cidr", fmt.Sprintf("10.%d.0.0/16", 88+int(h[4])%100), // 10.88–10.187: never Dagger's 10.87
	}
}

// HostCADir holds the CA certificates the host trusts beyond the system's
// (Debian's update-ca-certificates reads them from here).
var HostCADir = "/usr/local/share/ca-certificates"

// hostCAs copies the host's extra CA certificates (*.crt, any depth) into
// a directory under base named by their hash, once, and returns it ("" when
// there are none). A change of certificates is a new directory, hence a
// new engine spec; the directory an engine has mounted is never rewritten.
func hostCAs(base string) (string, error) {
	var files []string
	filepath.WalkDir(HostCADir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".crt") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		return "", nil
	}
	sort.Strings(files)
	h := sha256.New()
	contents := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(HostCADir, f)
		name := strings.ReplaceAll(rel, string(filepath.Separator), "_")
		fmt.Fprintf(h, "%s\n%d\n", name, len(b))
		h.Write(b)
		contents[name] = b
	}
	dir := filepath.Join(base, "ca-certificates-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(base, ".ca-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for name, b := range contents {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return "", err
		}
	}
	return dir, nil
}

func ensureContainer(ctx context.Context, p *progress.Reporter, ep Endpoint) error {
	cfg, err := engineConfig()
	if err != nil {
		return err
	}
	dir, err := cachedir.Sub("engine")
	if err != nil {
		return err
	}
	unlock, err := cachedir.Lock(filepath.Join(dir, "container.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	configPath := filepath.Join(dir, ep.Container+".engine.json")
	caDir, err := hostCAs(dir)
	if err != nil {
		return fmt.Errorf("the host's CA certificates: %w", err)
	}
	h := sha256.New()
	fmt.Fprintln(h, ep.Image, strings.Join(append(runArgs(ep, configPath, caDir), engineArgs(ep.Container)...), " "))
	h.Write(cfg)
	spec := hex.EncodeToString(h.Sum(nil))[:16]

	step := p.Start("engine container %s", ep.Container)
	c, err := dockercli.InspectContainer(ctx, ep.Container)
	switch {
	case err == nil && c.Running && c.Labels[specLabel] == spec:
		step.Cached()
		return nil
	case err == nil:
		p.Infof("replacing container %s (state %s, spec changed: %v)", ep.Container, c.Status, c.Labels[specLabel] != spec)
		if err := dockercli.RemoveContainer(ctx, ep.Container); err != nil {
			return step.Fail(err)
		}
	case !errors.Is(err, dockercli.ErrNotFound):
		return step.Fail(err)
	}
	if err := os.WriteFile(configPath, cfg, 0o644); err != nil {
		return step.Fail(err)
	}
	args := append(append(runArgs(ep, configPath, caDir), "--label", specLabel+"="+spec, ep.Image), engineArgs(ep.Container)...)
	if _, err := dockercli.Run(ctx, args...); err != nil {
		return step.Fail(fmt.Errorf("starting the engine container: %w", err))
	}
	if err := waitReady(ctx, ep.Container, 90*time.Second); err != nil {
		return step.Fail(err)
	}
	step.Done()
	return nil
}

// waitReady waits for the engine's socket; if the container exits, its last
// log lines say why.
func waitReady(ctx context.Context, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := dockercli.InspectContainer(ctx, name)
		if err != nil {
			return err
		}
		if !c.Running {
			return fmt.Errorf("the engine container %s exited (status %s, code %d); its last log lines:\n%s",
				name, c.Status, c.ExitCode, dockercli.Logs(ctx, name, 25))
		}
		if _, err := dockercli.Run(ctx, "exec", name, "test", "-S", "/run/dagger/engine.sock"); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the engine container %s did not open its socket within %s; its last log lines:\n%s",
				name, limit, dockercli.Logs(ctx, name, 25))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Down stops and removes the local engine container. Its state volume (the
// build cache) and the images stay, so the next Up is quick.
func Down(ctx context.Context) error {
	if err := dockercli.Check(ctx); err != nil {
		return err
	}
	return dockercli.RemoveContainer(ctx, ContainerName())
}

// Status describes the engine without changing anything.
func Status(ctx context.Context) (string, error) {
	mode, err := DetectMode(ctx)
	if err != nil {
		return "", err
	}
	switch mode {
	case ModeExternal:
		return fmt.Sprintf("mode external: %s=%s", RunnerHostEnv, current().RunnerHost), nil
	case ModeDagger:
		return "mode dagger: Dagger's own provisioning", nil
	}
	if err := dockercli.Check(ctx); err != nil {
		return "", err
	}
	c, err := dockercli.InspectContainer(ctx, ContainerName())
	if errors.Is(err, dockercli.ErrNotFound) {
		return fmt.Sprintf("mode local: container %s does not exist (go run mage.go engine:up)", ContainerName()), nil
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("mode local: container %s %s, image %s", ContainerName(), c.Status, c.Image), nil
}

// Connect provisions (when needed) and connects the Go SDK. Dagger's own
// progress goes to logOutput when it is not nil.
func Connect(ctx context.Context, p *progress.Reporter, opts ...dagger.ClientOpt) (*dagger.Client, error) {
	ep, err := Up(ctx, p)
	if err != nil {
		return nil, err
	}
	ep.Export()
	step := p.Start("connect to the Dagger engine (%s)", ep.Mode)
	c, err := dagger.Connect(ctx, opts...)
	if err != nil {
		return nil, step.Fail(fmt.Errorf("connecting to the Dagger engine (%s mode): %w", ep.Mode, err))
	}
	step.Done()
	return c, nil
}
