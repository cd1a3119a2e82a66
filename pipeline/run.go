package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// What the mage targets call: each reads what it needs of the settings,
// opens the machine as far as it must, and runs.

// RunRelease is `mage release VERSION`: the release, deployed when
// MARATHON_URL is set (and deploy allows it), else a dry run.
func RunRelease(ctx context.Context, st settings.Settings, ver string, deploy bool) error {
	v, err := version.Parse(ver) // the one place a release's version is parsed
	if err != nil {
		return err
	}
	return runRelease(ctx, st, v, deploy)
}

// runRelease is the release of a version already parsed (by RunRelease,
// or by ci.Decide for ci:release).
func runRelease(ctx context.Context, st settings.Settings, v version.Version, deploy bool) error {
	p := progress.New(nil)
	if err := st.Need(settings.AreaRelease); err != nil {
		return err
	}
	cfg, err := NewConfig(v, st.Release, RegistryAddress(st))
	if err != nil {
		return err
	}
	r := &Release{Config: cfg}
	if deploy && st.Marathon.URL != "" {
		if err := st.Need(settings.AreaMarathon); err != nil {
			return err
		}
		if r.Deploy, err = NewDeployer(st.Marathon, os.Stderr); err != nil {
			return err
		}
	}
	if r.S, err = Open(ctx, st, p, Needs{Engine: true, LazyEngine: true}); err != nil {
		return err
	}
	defer r.S.Close()
	err = r.Run(ctx)
	p.Summary("release " + cfg.Version.Raw)
	return err
}

// RunTestService is `mage testService System/Service`: one service built,
// run for real as Marathon would, health-checked and pinged; its log shown.
// LHCBDIRAC_VERSION, else the newest LHCbDIRAC on the index.
func RunTestService(ctx context.Context, st settings.Settings, service string) error {
	p := progress.New(nil)
	if err := st.Need(settings.AreaRelease); err != nil {
		return err
	}
	version, err := DefaultVersion(ctx, p, st.Release)
	if err != nil {
		return err
	}
	cfg, err := ConfigFor(version, st, RegistryAddress(st))
	if err != nil {
		return err
	}
	if _, err := cfg.WithOnly(service); err != nil {
		return err
	}
	r := &Release{Config: cfg}
	if r.S, err = Open(ctx, st, p, Needs{Engine: true}); err != nil {
		return err
	}
	defer r.S.Close()
	err = r.TestService(ctx, service)
	p.Summary("testService " + service)
	return err
}

// RunLockResolve is `mage lock VERSION`: the lock resolved afresh into
// dist/VERSION/lhcbdirac.lock.
func RunLockResolve(ctx context.Context, st settings.Settings, version string, out io.Writer) error {
	cfg, err := ConfigFor(version, st, "")
	if err != nil {
		return err
	}
	path, l, err := WriteLock(ctx, progress.New(nil), cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s\n", path, l.Summary())
	return nil
}

// RunLockCheck is `mage lock:check FILE`: the file read as a release would
// read it; nothing built, no engine, Docker or network.
func RunLockCheck(file string, out io.Writer) error {
	l, err := lhcbdirac.ReadLock(file)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: ok: %s\n", file, l.Summary())
	return nil
}

// benchRepository is the benchmarks' repository in the session's registry.
func benchRepository(s *Session) string { return s.Registry + "/lhcbdirac-pipeline-bench" }

// RunBench is `mage bench`.
func RunBench(ctx context.Context, st settings.Settings, out io.Writer) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	return withBenchSession(ctx, st, func(s *Session, cfg Config) error {
		_, err := Bench(ctx, s, cfg, root, out)
		return err
	})
}

// withBenchSession runs bench with what every benchmark stands on: the
// version (LHCBDIRAC_VERSION, else the newest), a session, and a
// configuration whose images go to the benchmarks' repository (set before
// the configuration is made, so the apps name it too; bench then gives
// them tags of its own, so a release's tags never move for a benchmark).
// Bench's session is quiet: the benchmark prints its figures, not the
// releases' progress.
func withBenchSession(ctx context.Context, st settings.Settings, bench func(*Session, Config) error) error {
	p := progress.New(os.Stderr)
	if err := st.Need(settings.AreaRelease); err != nil {
		return err
	}
	v, err := BenchVersion(ctx, p, st.Release)
	if err != nil {
		return err
	}
	s, err := Open(ctx, st, p, Needs{Engine: true, Registry: true})
	if err != nil {
		return err
	}
	defer s.Close()
	rel := st.Release
	rel.Repository = benchRepository(s)
	cfg, err := NewConfig(v, rel, s.Registry)
	if err != nil {
		return err
	}
	quiet := *s
	quiet.P, quiet.Out = progress.Discard(), io.Discard
	return bench(&quiet, cfg)
}
