package engine

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// configure sets the engine's configuration for one test.
func configure(t *testing.T, c Config) {
	old := current()
	Configure(c)
	t.Cleanup(func() { Configure(old) })
}

func TestDetectModeExternalWhenUserPointsElsewhere(t *testing.T) {
	configure(t, Config{RunnerHost: "tcp://engine.example:1234"})
	m, err := DetectMode(context.Background())
	if err != nil || m != ModeExternal {
		t.Fatalf("mode = %s, %v; want external", m, err)
	}
}

func TestDetectModeOwnContainerIsLocal(t *testing.T) {
	// The variables Up exports point at our own container; a later Up in the
	// same process must keep managing it rather than take it as external.
	configure(t, Config{RunnerHost: "docker-container://" + ContainerName(), Mode: "local"})
	m, err := DetectMode(context.Background())
	if err != nil || m != ModeLocal {
		t.Fatalf("mode = %s, %v; want local", m, err)
	}
}

func TestDetectModeRejectsUnknownValueNamingIt(t *testing.T) {
	configure(t, Config{Mode: "cloud"})
	_, err := DetectMode(context.Background())
	if err == nil || !strings.Contains(err.Error(), ModeEnv) || !strings.Contains(err.Error(), "cloud") {
		t.Fatalf("error %v should name %s and the value", err, ModeEnv)
	}
	configure(t, Config{Mode: "dagger"})
	if m, err := DetectMode(context.Background()); err != nil || m != ModeDagger {
		t.Fatalf("mode = %s, %v; want dagger", m, err)
	}
}

func TestRunArgsAvoidPrivilegedAndKeepTheEngineContained(t *testing.T) {
	args := runArgs(Endpoint{Container: "c"}, "/cache/engine.json", "")
	joined := strings.Join(args, " ")
	if strings.Contains(joined, "--privileged") {
		t.Fatal("--privileged fails on these machines")
	}
	for _, want := range []string{"--cap-add ALL", "--cap-drop SYS_RESOURCE", "seccomp=unconfined",
		"systempaths=unconfined", "--network host", StateVolume() + ":/var/lib/dagger",
		"/cache/engine.json:/etc/dagger/engine.json:ro"} {
		if !strings.Contains(joined, want) {
			t.Errorf("docker run lacks %q: %s", want, joined)
		}
	}
}

// Two engines on the host's network need bridges and address ranges of
// their own: the default engine keeps Dagger's, another name gets its own,
// the same each time, and a third name another again.
func TestEnginesOfOtherNamesGetNetworksOfTheirOwn(t *testing.T) {
	if a := engineArgs(defaultName); a != nil {
		t.Errorf("the default engine gets %v, want Dagger's defaults", a)
	}
	fresh, other := engineArgs("lhcbdirac-fresh-engine"), engineArgs("another-engine")
	if !slices.Equal(fresh, engineArgs("lhcbdirac-fresh-engine")) {
		t.Errorf("not stable: %v", fresh)
	}
	if len(fresh) != 4 || fresh[0] != "--network-name" || fresh[2] != "--network-cidr" {
		t.Fatalf("flags %v", fresh)
	}
	if len(fresh[1])+1 > 15 { // the bridge is <name>0, an interface name
		t.Errorf("network name %q: the bridge's name would exceed Linux's 15 characters", fresh[1])
	}
	if fresh[1] == "dagger" || fresh[3] == "10.87.0.0/16" {
		t.Errorf("%v shares the default engine's network", fresh)
	}
	if _, _, err := net.ParseCIDR(fresh[3]); err != nil {
		t.Error(err)
	}
	if fresh[1] == other[1] {
		t.Errorf("two engines, one network name %q", fresh[1])
	}
}

func TestEngineConfigListsPlainHTTPRegistries(t *testing.T) {
	configure(t, Config{EmbeddedRegistryAddr: "127.0.0.1:5999", InsecureRegistries: []string{" 127.0.0.1:6000 ", ""}})
	b, err := engineConfig()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Registries map[string]struct{ HTTP bool } `json:"registries"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k, v := range cfg.Registries {
		if !v.HTTP {
			t.Errorf("%s not marked http", k)
		}
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"127.0.0.1:5999", "127.0.0.1:6000"}) {
		t.Fatalf("registries = %v", got)
	}
}

func TestEndpointEnv(t *testing.T) {
	ep := Endpoint{RunnerHost: "docker-container://x", CLIBin: "/c/dagger"}
	env := ep.Env()
	if !slices.Equal(env, []string{RunnerHostEnv + "=docker-container://x", CLIBinEnv + "=/c/dagger"}) {
		t.Fatalf("env = %v", env)
	}
	if len((Endpoint{Mode: ModeDagger}).Env()) != 0 {
		t.Fatal("dagger mode must export nothing: the SDK provisions itself")
	}
}

func TestExternalEngineBuildsNothing(t *testing.T) {
	cache := t.TempDir()
	t.Cleanup(cachedir.Swap(cache))
	configure(t, Config{RunnerHost: "tcp://127.0.0.1:1", CLIBin: "/opt/dagger/bin/dagger"})
	ep, err := Up(context.Background(), progress.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if ep.Mode != ModeExternal || ep.RunnerHost != "tcp://127.0.0.1:1" || ep.CLIBin != "/opt/dagger/bin/dagger" {
		t.Fatalf("endpoint %+v", ep)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 0 {
		t.Fatalf("external mode wrote to the cache: %v", entries)
	}
}

// The cache is bounded by absolute figures (the disks here misreport their
// size), and a bad override names its variable.
func TestEngineConfigBoundsTheCache(t *testing.T) {
	configure(t, Config{CacheMax: "25GB"})
	b, err := engineConfig()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		GC map[string]string `json:"gc"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.GC["maxUsedSpace"] != "25GB" || cfg.GC["minFreeSpace"] != "15GB" || cfg.GC["reservedSpace"] != "10GB" {
		t.Fatalf("gc %v", cfg.GC)
	}
	configure(t, Config{CacheMax: "25GB", MinFree: "lots"})
	if _, err := engineConfig(); err == nil || !strings.Contains(err.Error(), `LHCBDIRAC_ENGINE_MIN_FREE="lots"`) {
		t.Fatalf("bad value: %v", err)
	}
}

func TestParseMiBReadsDockerStats(t *testing.T) {
	for in, want := range map[string]float64{"1.5GiB": 1536, " 812.5MiB ": 812.5, "512KiB": 0.5, "1048576B": 1, "--": 0, "x MiB": 0} {
		if got := ParseMiB(in); got != want {
			t.Errorf("ParseMiB(%q) = %v, want %v", in, got, want)
		}
	}
}
