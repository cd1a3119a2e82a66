//go:build integration

// Package interop runs DIRAC's own code — the DIRAC and LHCbDIRAC the
// lhcbdirac image installs from its lock — against the project's DIPS
// code, in both directions: DIRAC's RPC client calls the project's test
// server, the project's client, dirac-self-ping and the pinger call a real
// dirac-service, and values go through both codecs. DIRAC is the real one,
// never a copy of its rules: /opt/dirac of the image, built by the
// pipeline's own recipe, exported to the cache and run with the host's
// Debian python3.11 (the interpreter the image's venv was made with).
package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/pytools"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// scratch holds what the package's tests share (built binaries).
var scratch string

func TestMain(m *testing.M) {
	var err error
	if scratch, err = os.MkdirTemp("", "interop-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// Version is the LHCbDIRAC whose DIRAC the tests run.
const Version = "v12.0.21"

var (
	venvOnce sync.Once
	venvDir  string
	venvErr  error
)

// venv returns the exported /opt/dirac (built once per lock).
func venv(t testing.TB) string {
	t.Helper()
	venvOnce.Do(func() { venvDir, venvErr = buildVenv(t) })
	if venvErr != nil {
		t.Fatalf("DIRAC (from the lock) cannot be had: %v", venvErr)
	}
	return venvDir
}

func buildVenv(t testing.TB) (string, error) {
	ctx := context.Background()
	p := testenv.Reporter(t)
	v, _ := version.Parse(Version)
	lock, _ := lhcbdirac.RememberedLock(v, "")
	if lock == nil {
		tools, err := pytools.Ensure(ctx, p, "")
		if err != nil {
			return "", err
		}
		if lock, err = lhcbdirac.ResolveAndRemember(ctx, p, tools, v, ""); err != nil {
			return "", err
		}
	}
	base, err := cachedir.Sub("dirac-venv")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, strings.TrimPrefix(lock.Digest(), "sha256:")[:16])
	_, err = cachedir.Entry{Dir: dir}.Ensure(func(tmp string) error {
		f := testengine.Foundation(t)
		ref := func(spec baseimage.Spec) (string, error) {
			return baseimage.Build(ctx, p, spec, f.Registry+"/lhcbdirac-pipeline/base:"+spec.Suite+"-"+spec.Key())
		}
		runtimeBase, err := ref(lhcbdirac.Base)
		if err != nil {
			return err
		}
		builderBase, err := ref(lhcbdirac.BuilderBase)
		if err != nil {
			return err
		}
		toolsBase, err := ref(enginecheck.BaseSpec)
		if err != nil {
			return err
		}
		root, err := hostimages.RepoRoot()
		if err != nil {
			return err
		}
		mods, err := gobuild.PrepareModules(ctx, p, root)
		if err != nil {
			return err
		}
		b, err := gobuild.NewBuilder(ctx, f.Client, p, toolsBase, root, mods)
		if err != nil {
			return err
		}
		img := lhcbdirac.Recipe(f.Client, b, lhcbdirac.Inputs{Base: runtimeBase, BuilderBase: builderBase, Version: v, Lock: lock})
		// One compressed file crosses to the host: a directory of 30,000
		// files is far slower (and stalled) through the engine's session.
		step := p.Start("export /opt/dirac (LHCbDIRAC %s, DIRAC %s) to %s", lock.LHCbDIRACVersion(), lock.DIRACVersion(), dir)
		tgz := img.WithExec([]string{"tar", "-C", lhcbdirac.DiracRoot, "-czf", "/tmp/dirac.tgz", "."}).File("/tmp/dirac.tgz")
		archive := dir + ".tgz"
		if _, err := tgz.Export(ctx, archive); err != nil {
			return step.Fail(err)
		}
		defer os.Remove(archive)
		if out, err := exec.Command("tar", "-C", tmp, "-xzf", archive).CombinedOutput(); err != nil {
			return step.Fail(fmt.Errorf("tar: %v: %s", err, out))
		}
		step.Done()
		return nil
	})
	return dir, err
}

// DIRAC is a DIRAC installation on this host: the exported venv, and a
// root (DIRAC_ROOT_PATH) holding etc/dirac.cfg and etc/grid-security.
type DIRAC struct {
	Venv, Root string
	PKI        *dipstest.PKI
	Host       dipstest.KeyPair
}

// newDIRAC makes a DIRAC root with a fresh test PKI (a host certificate
// for localhost) and the given dirac.cfg.
func newDIRAC(t testing.TB, cfg string) *DIRAC { return newDIRACKeys(t, cfg, false) }

// newDIRACKeys is newDIRAC with ECDSA P-256 host keys when ecdsa is set
// (grid host certificates are RSA-2048).
func newDIRACKeys(t testing.TB, cfg string, ecdsa bool) *DIRAC {
	t.Helper()
	d := &DIRAC{Venv: venv(t), Root: t.TempDir()}
	gs := filepath.Join(d.Root, "etc", "grid-security")
	var err error
	if d.PKI, err = dipstest.NewPKI(gs, "DIRAC interop CA"); err != nil {
		t.Fatal(err)
	}
	d.PKI.ECDSA = ecdsa
	if d.Host, err = d.PKI.Host("host", "localhost"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Root, "etc", "dirac.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// clientCfg is a dirac.cfg for a client that authenticates with the host
// certificate, with no Configuration Server.
const clientCfg = `DIRAC
{
  Security
  {
    UseServerCertificate = yes
  }
}
`

// Cmd runs a program of the venv (python, or one of its scripts through
// python: their #! names /opt/dirac).
func (d *DIRAC) Cmd(ctx context.Context, prog string, args ...string) *exec.Cmd {
	python := filepath.Join(d.Venv, "bin", "python")
	if prog != "python" {
		args = append([]string{filepath.Join(d.Venv, "bin", prog)}, args...)
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = append(os.Environ(),
		"DIRAC_ROOT_PATH="+d.Root,
		"DIRACSYSCONFIG="+filepath.Join(d.Root, "etc", "dirac.cfg"),
		"X509_CERT_DIR="+d.PKI.CADir(),
		"PATH="+filepath.Join(d.Venv, "bin")+":"+settings.Read("PATH"),
		"HOME="+d.Root,
	)
	cmd.Dir = d.Root
	return cmd
}

// Python runs a script with DIRAC's python and returns its standard output.
func (d *DIRAC) Python(t testing.TB, script string, env ...string) string {
	t.Helper()
	cmd := d.Cmd(t.Context(), "python", "-c", script)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("DIRAC's python: %v\n%s\n%s", err, out.String(), errb.String())
	}
	return out.String()
}

// Service is a dirac-service running on this host.
type Service struct {
	Name string
	Port int
	Log  *bytes.Buffer
}

// URL is the service's dips:// URL on localhost.
func (s *Service) URL() string { return fmt.Sprintf("dips://localhost:%d/%s", s.Port, s.Name) }

// startService starts DIRAC's dirac-service for name (System/Service) on
// a free port and waits until it logs that it listens.
func startService(t testing.TB, name string, env ...string) (*DIRAC, *Service) {
	return startServiceKeys(t, name, false, env...)
}

func startServiceKeys(t testing.TB, name string, ecdsa bool, env ...string) (*DIRAC, *Service) {
	t.Helper()
	port := testproc.Ports(t, 1)[0]
	system, svc, _ := strings.Cut(name, "/")
	cfg := fmt.Sprintf("DIRAC\n{\n  Hostname = localhost\n  Security\n  {\n    UseServerCertificate = yes\n  }\n}\nSystems\n{\n  %s\n  {\n    Services\n    {\n      %s\n      {\n        Port = %d\n      }\n    }\n  }\n}\n", system, svc, port)
	d := newDIRACKeys(t, cfg, ecdsa)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := d.Cmd(ctx, "dirac-service", name)
	cmd.Env = append(cmd.Env, env...)
	s := &Service{Name: name, Port: port, Log: &bytes.Buffer{}}
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	listening := make(chan struct{})
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			s.Log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "Listening at dips://") {
				once.Do(func() { close(listening) })
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	select {
	case <-listening:
	case <-time.After(90 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("dirac-service %s did not listen within 90 s:\n%s", name, s.Log.String())
	}
	return d, s
}
