// Package baseimage makes minimal Debian images without pulling anything:
// debootstrap builds a root filesystem from Debian's package archive on the
// host, and go-containerregistry turns it into an OCI image that is pushed to
// the project's registry and pinned by digest. Containers cannot resolve the
// package archive, so this is the only way a base enters the engine here.
package baseimage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// MirrorEnv overrides the Debian mirror; by default the one apt uses on this
// host, so the pipeline goes wherever the machine's own package client goes.
const MirrorEnv = "LHCBDIRAC_DEBIAN_MIRROR"

// recipeVersion changes whenever the way a tree is made changes, so old cache
// entries are not reused for a different recipe.
const recipeVersion = "1"

// Spec says which Debian tree to make.
type Spec struct {
	Suite    string   // e.g. "bookworm"
	Variant  string   // debootstrap --variant; "minbase" when empty
	Packages []string // extra packages (debootstrap --include); dependencies follow
}

func (s Spec) normalized() Spec {
	if s.Suite == "" {
		s.Suite = "bookworm"
	}
	if s.Variant == "" {
		s.Variant = "minbase"
	}
	pkgs := slices.Clone(s.Packages)
	slices.Sort(pkgs)
	s.Packages = slices.Compact(pkgs)
	return s
}

// Key identifies the tree a spec produces; it names the cache entry.
func (s Spec) Key() string {
	s = s.normalized()
	h := sha256.Sum256([]byte(strings.Join([]string{recipeVersion, s.Suite, s.Variant, strings.Join(s.Packages, ",")}, "\n")))
	return hex.EncodeToString(h[:])[:16]
}

// Validate rejects package names that debootstrap would misread; the names go
// on a command line, so they must be plain Debian package names.
func (s Spec) Validate() error {
	for _, p := range s.Packages {
		if !validPackage(p) {
			return fmt.Errorf("package name %q is not a Debian package name (lowercase letters, digits, + - . only)", p)
		}
	}
	for _, v := range []string{s.Suite, s.Variant} {
		if v != "" && !validPackage(v) {
			return fmt.Errorf("suite/variant %q is not valid", v)
		}
	}
	return nil
}

func validPackage(p string) bool {
	if len(p) < 2 || p[0] == '-' {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("+-.", r)) {
			return false
		}
	}
	return true
}

// Rootfs returns a directory holding the Debian tree for spec, running
// debootstrap into the cache the first time. Concurrent callers (parallel test
// packages) share one build through a file lock.
func Rootfs(ctx context.Context, p *progress.Reporter, spec Spec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	spec = spec.normalized()
	base, err := cachedir.Sub("rootfs")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, spec.Key())
	step := p.Start("debootstrap %s/%s +%d packages", spec.Suite, spec.Variant, len(spec.Packages))
	built, err := cachedir.Entry{Dir: dir}.Ensure(func(tmp string) error {
		if _, err := exec.LookPath("debootstrap"); err != nil {
			return errors.New("debootstrap not found on PATH: install it (apt-get install debootstrap)")
		}
		if os.Geteuid() != 0 {
			return errors.New("debootstrap must run as root (it creates device nodes and chroots)")
		}
		mirror, err := Mirror()
		if err != nil {
			return err
		}
		args := []string{"--variant=" + spec.Variant, "--components=main"}
		if len(spec.Packages) > 0 {
			args = append(args, "--include="+strings.Join(spec.Packages, ","))
		}
		args = append(args, spec.Suite, tmp, mirror)
		logPath := dir + ".log"
		logf, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := exec.CommandContext(ctx, "debootstrap", args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("debootstrap %s failed (%v); last lines of %s:\n%s\nCheck that the Debian mirror %s is reachable (or set %s) and that the package names exist",
				spec.Suite, err, logPath, tail(logPath, 15), mirror, MirrorEnv)
		}
		// debootstrap leaves apt caches and logs that only make images
		// bigger and less reproducible.
		for _, junk := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "var/log"} {
			cleanDir(filepath.Join(tmp, junk))
		}
		return nil
	})
	switch {
	case err != nil:
		return "", step.Fail(err)
	case !built:
		step.Cached()
	default:
		step.Done()
	}
	return dir, nil
}

// cleanDir empties a directory but keeps it (and its sub-directories, which
// dpkg and apt expect to exist).
func cleanDir(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			_ = os.Remove(path)
		}
		return nil
	})
}

// mirror is the configured Debian mirror ("" for apt's own).
var mirror atomic.Value

// SetMirror sets the Debian mirror for this process ($LHCBDIRAC_DEBIAN_MIRROR,
// read by the configuration boundary); "" goes back to apt's own.
func SetMirror(m string) { mirror.Store(m) }

// Mirror returns the Debian mirror: the one SetMirror gave, else the first
// "debian" archive URI apt is configured with on this host.
func Mirror() (string, error) {
	if m, _ := mirror.Load().(string); m != "" {
		return m, nil
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		if m := mirrorFromDeb822(f); m != "" {
			return m, nil
		}
	}
	if m := mirrorFromList("/etc/apt/sources.list"); m != "" {
		return m, nil
	}
	return "", fmt.Errorf("no Debian mirror found in /etc/apt/sources.list(.d): set %s to the archive URL", MirrorEnv)
}

// mirrorFromDeb822 reads "URIs:" fields of a deb822 .sources file.
func mirrorFromDeb822(path string) string {
	return firstArchive(path, func(line string) []string {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "URIs:"); ok {
			return strings.Fields(v)
		}
		return nil
	})
}

// mirrorFromList reads "deb [options] URI suite …" lines of sources.list.
func mirrorFromList(path string) string {
	return firstArchive(path, func(line string) []string {
		if fs := strings.Fields(line); len(fs) >= 3 && fs[0] == "deb" {
			return fs[1:]
		}
		return nil
	})
}

// firstArchive returns the first main-archive URI that candidates finds on a
// line of the file.
func firstArchive(path string, candidates func(line string) []string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, u := range candidates(sc.Text()) {
			if isMainArchive(u) {
				return u
			}
		}
	}
	return ""
}

// isMainArchive accepts ".../debian" and rejects the security archive, which
// holds no full suite.
func isMainArchive(u string) bool {
	u = strings.TrimRight(u, "/")
	return (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "file:/")) &&
		strings.HasSuffix(u, "/debian")
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
