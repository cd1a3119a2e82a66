// Package pytools runs the Python packaging tools the pipeline needs on
// the host: uv, which resolves a lock (fast, with hashes, for another
// platform than the host's), and pip, which lists the versions an index
// has. They live in a virtual environment of their own in the cache,
// installed from tools.lock with every hash checked, so the host's own
// Python packages are never touched and every machine runs the same tools.
//
// Index credentials (LHCBDIRAC_PIP_INDEX_URL with userinfo) reach the
// tools through their environment only, never their command line.
package pytools

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/python/pep508"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// Lock pins the tools (uv) by version and hash; the build container
// installs uv from it too.
//
//go:embed tools.lock
var Lock []byte

// Tools is the tools' environment.
type Tools struct {
	Dir      string // the virtual environment
	IndexURL string // "" for the tools' default index
}

// Python is the interpreter the environment is made from: Debian's, when
// present (the host may also have others first on PATH).
func Python() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

// Ensure makes (once per tools.lock) the environment and returns it.
func Ensure(ctx context.Context, p *progress.Reporter, indexURL string) (*Tools, error) {
	h := sha256.Sum256(Lock)
	base, err := cachedir.Sub("pytools")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(base, hex.EncodeToString(h[:])[:16])
	t := &Tools{Dir: dir, IndexURL: indexURL}
	var step *progress.Running
	_, err = cachedir.Entry{Dir: dir, InPlace: true}.Ensure(func(dir string) error {
		// In place: a virtual environment records its own path.
		step = p.Start("Python tools (uv) from internal/build/pytools/tools.lock")
		if out, err := exec.CommandContext(ctx, Python(), "-m", "venv", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("%s -m venv: %v: %s (on Debian: apt-get install python3-venv)", Python(), err, bytes.TrimSpace(out))
		}
		req := filepath.Join(base, "tools.lock")
		if err := os.WriteFile(req, Lock, 0o644); err != nil {
			return err
		}
		if _, err := t.run(ctx, "pip", "install", "--quiet", "--require-hashes", "--no-deps", "-r", req); err != nil {
			return fmt.Errorf("installing the Python tools: %w", err)
		}
		return nil
	})
	if step != nil {
		if err != nil {
			return nil, step.Fail(err)
		}
		step.Done()
	}
	return t, err
}

// env is the tools' environment: the index (with its credentials) through
// variables pip and uv read, the host's certificate store trusted (a
// TLS-intercepting proxy's CA is there), no user configuration.
func (t *Tools) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PIP_") || strings.HasPrefix(k, "UV_") {
			continue // a host's PIP_FIND_LINKS or UV_INDEX must not change a lock
		}
		env = append(env, kv)
	}
	env = append(env, "PIP_CONFIG_FILE=/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK=1", "UV_NO_CONFIG=1", "UV_SYSTEM_CERTS=1")
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		env = append(env, "PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
	}
	if t.IndexURL != "" {
		env = append(env, "PIP_INDEX_URL="+t.IndexURL, "UV_DEFAULT_INDEX="+t.IndexURL)
	}
	return env
}

// run runs one of the environment's programs; errors carry its output,
// scrubbed of the index's credentials.
func (t *Tools) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(t.Dir, "bin", prog), args...)
	cmd.Env = t.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String() + "\n" + out.String())
		return out.Bytes(), fmt.Errorf("%s %s: %v: %s", prog, args[0], err, redact.Scrub(msg, redact.Secrets(t.IndexURL)))
	}
	return out.Bytes(), nil
}

// ErrNoSuchPackage is returned by Versions when the index has no such project.
var ErrNoSuchPackage = errors.New("the index has no such package")

var availableRE = regexp.MustCompile(`(?m)^Available versions: (.*)$`)

// Versions lists the versions of a package the index has, pre-releases
// included, newest first (pip's order).
func (t *Tools) Versions(ctx context.Context, name string) ([]string, error) {
	out, err := t.run(ctx, "pip", "index", "versions", "--pre", name)
	if err != nil {
		if strings.Contains(err.Error(), "No matching distribution") {
			return nil, fmt.Errorf("%s: %w", name, ErrNoSuchPackage)
		}
		return nil, err
	}
	m := availableRE.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("pip index versions %s: no version list in %q", name, out)
	}
	return strings.Split(string(m[1]), ", "), nil
}

// Platform is the one the image runs on: Debian bookworm's CPython 3.11
// (glibc 2.36) on x86_64.
const (
	PythonVersion  = "3.11"
	PythonPlatform = "x86_64-manylinux_2_36"
)

// Compile resolves requirements (with constraints) into a lock: pinned
// versions, every hash, for Platform. Packages named in omit are resolved
// but left out of the output (they are provided otherwise).
func (t *Tools) Compile(ctx context.Context, requirements, constraints string, omit ...string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "lock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, cons, out := filepath.Join(dir, "requirements.in"), filepath.Join(dir, "constraints.txt"), filepath.Join(dir, "lock.txt")
	if err := errors.Join(os.WriteFile(in, []byte(requirements), 0o644), os.WriteFile(cons, []byte(constraints), 0o644)); err != nil {
		return nil, err
	}
	args := []string{"pip", "compile", in, "-c", cons, "-o", out, "--quiet",
		"--python-version", PythonVersion, "--python-platform", PythonPlatform,
		"--generate-hashes", "--no-header", "--no-emit-index-url", "--no-annotate"}
	for _, o := range omit {
		args = append(args, "--no-emit-package", o)
	}
	if _, err := t.run(ctx, "uv", args...); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

var noWheelRE = regexp.MustCompile(`Because ([A-Za-z0-9._-]+)==\S+ has no usable wheels`)

// SourceOnly names the packages of a lock that have no wheel for Platform
// and must be built from their source distribution.
func (t *Tools) SourceOnly(ctx context.Context, lock []byte) ([]string, error) {
	dir, err := os.MkdirTemp("", "lock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var names []string
	for range 64 {
		req := filepath.Join(dir, "lock.txt")
		if err := os.WriteFile(req, Without(lock, names...), 0o644); err != nil {
			return nil, err
		}
		_, err := t.run(ctx, "uv", "pip", "install", "--dry-run", "--no-build", "--no-deps", "--require-hashes", "-r", req,
			"--python-version", PythonVersion, "--python-platform", PythonPlatform, "--target", filepath.Join(dir, "target"))
		if err == nil {
			return names, nil
		}
		m := noWheelRE.FindStringSubmatch(err.Error())
		if m == nil {
			return nil, err
		}
		names = append(names, Normalize(m[1]))
	}
	return nil, fmt.Errorf("more than 64 packages without wheels")
}

// Normalize is a distribution name as PEP 503 compares them (pep508's).
func Normalize(name string) string { return pep508.Normalize(name) }

// Without returns a requirements file without the named distributions'
// entries (an entry is its "name==version" line and the continuation lines
// after it).
func Without(lock []byte, names ...string) []byte {
	drop := map[string]bool{}
	for _, n := range names {
		drop[Normalize(n)] = true
	}
	var out bytes.Buffer
	skipping := false
	for _, line := range strings.SplitAfter(string(lock), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") && !strings.HasPrefix(trimmed, "#") {
			name, _, _ := strings.Cut(trimmed, "==")
			if i := strings.IndexAny(name, "[ ;"); i >= 0 {
				name = name[:i]
			}
			skipping = drop[Normalize(name)]
		}
		if !skipping {
			out.WriteString(line)
		}
	}
	return out.Bytes()
}

// DownloadSource fetches a distribution's source archive (name==version)
// into dir and returns its path (a hotfix test's real DIRAC tree).
func (t *Tools) DownloadSource(ctx context.Context, requirement, dir string) (string, error) {
	if _, err := t.run(ctx, "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", dir, requirement); err != nil {
		return "", err
	}
	m, err := filepath.Glob(filepath.Join(dir, "*.tar.gz"))
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("pip download %s: want one .tar.gz in %s, found %v", requirement, dir, m)
	}
	return m[0], nil
}
