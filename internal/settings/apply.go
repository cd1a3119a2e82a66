package settings

import (
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/engine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
)

// Apply hands the host settings to the machinery that exists once per
// process — the engine, the cache directory, the Debian mirror, the
// registry pushed to — so that nothing below reads the environment.
func (h Host) Apply() {
	engine.Configure(engine.Config{
		Mode: h.EngineMode, RunnerHost: h.RunnerHost, CLIBin: h.CLIBin, Container: h.EngineContainer,
		CacheMax: h.EngineCacheMax, MinFree: h.EngineMinFree, InsecureRegistries: h.InsecureRegistries,
		EmbeddedRegistryAddr: h.EmbeddedRegistryAddr,
	})
	cachedir.SetRoot(h.Cache)
	baseimage.SetMirror(h.DebianMirror)
	registry.UseExternal(h.Registry)
}
