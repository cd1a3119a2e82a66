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
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

// MirrorEnv overrides the Debian mirror; by default the one apt uses on this
// host, so the pipeline goes wherever the machine's own package client goes.
const MirrorEnv = "LHCBDIRAC_DEBIAN_MIRROR"

// recipeVersion changes whenever what a spec's tree holds changes, so old
// cache entries are not reused for a different recipe. (Making the trees
// from one shared debootstrap instead of one each did not change it: a
// tree is still minbase plus the spec's packages and their dependencies,
// and the engine's and registry's images, tagged by their tree's key, are
// not rebuilt for it.)
const recipeVersion = "1"

// Spec says which Debian tree to make.
type Spec struct {
	Suite    string   // e.g. "bookworm"
	Variant  string   // debootstrap --variant; "minbase" when empty
	Packages []string // extra packages, installed with their dependencies (not their recommendations)
	// Clear are directories of the tree (relative, e.g. var/lib/mysql)
	// emptied after the install: state a maintainer script makes at
	// install time, with times and random ids in it, which would make
	// every tree differ (MariaDB's data directory; its users make their
	// own).
	Clear []string
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
	clear := slices.Clone(s.Clear)
	for i, c := range clear {
		clear[i] = filepath.Clean(c)
	}
	slices.Sort(clear)
	s.Clear = slices.Compact(clear)
	return s
}

// Key identifies the tree a spec produces; it names the cache entry.
func (s Spec) Key() string {
	s = s.normalized()
	parts := []string{recipeVersion, s.Suite, s.Variant, strings.Join(s.Packages, ",")}
	if len(s.Clear) > 0 { // specs without it keep the keys they had
		parts = append(parts, "clear "+strings.Join(s.Clear, ","))
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\n")))
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
	for _, c := range s.Clear {
		if c == "" || filepath.IsAbs(c) || !filepath.IsLocal(c) || filepath.Clean(c) == "." {
			return fmt.Errorf("directory to clear %q is not a relative path inside the tree (e.g. var/lib/mysql)", c)
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

// Rootfs returns a directory holding the Debian tree for spec, made in the
// cache the first time. One debootstrap of the suite and variant is made
// once and shared (Minbase); each spec's tree is a copy of it with its
// packages installed by apt from the same archive lists, so the seven
// bases of a release cost one debootstrap, not seven. Concurrent callers
// (parallel test packages, BuildAll) share each build through file locks.
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
	step := p.Start("Debian tree %s/%s +%d packages", spec.Suite, spec.Variant, len(spec.Packages))
	built, err := cachedir.Entry{Dir: dir}.Ensure(func(tmp string) error {
		minbase, err := Minbase(ctx, p, spec.Suite, spec.Variant)
		if err != nil {
			return err
		}
		if err := copyTree(ctx, minbase, tmp); err != nil {
			return err
		}
		date, err := archiveDate(tmp)
		if err != nil {
			return err
		}
		if len(spec.Packages) > 0 {
			if err := aptInstall(ctx, tmp, spec.Packages, dir+".log"); err != nil {
				return err
			}
		}
		for _, c := range spec.Clear {
			if err := emptyDir(filepath.Join(tmp, c)); err != nil {
				return fmt.Errorf("clearing %s in the tree: %w", c, err)
			}
		}
		if err := normalize(tmp, date); err != nil {
			return err
		}
		// Caches, lists and logs only make images bigger and less
		// reproducible; apt and dpkg find their directories still there.
		for _, junk := range []string{"var/cache/apt", "var/lib/apt/lists", "var/log"} {
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

// minbaseVersion changes whenever the way the shared debootstrap tree is
// made changes.
const minbaseVersion = "1"

// Minbase returns the debootstrap tree of suite and variant, run once into
// the cache and shared by every spec's tree. It keeps the archive lists
// debootstrap fetched, so every tree made from it installs the versions
// those lists name.
func Minbase(ctx context.Context, p *progress.Reporter, suite, variant string) (string, error) {
	s := Spec{Suite: suite, Variant: variant}
	if err := s.Validate(); err != nil {
		return "", err
	}
	s = s.normalized()
	base, err := cachedir.Sub("rootfs")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, "debootstrap-"+s.Suite+"-"+s.Variant+"-"+minbaseVersion)
	step := p.Start("debootstrap %s/%s", s.Suite, s.Variant)
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
		logPath := dir + ".log"
		logf, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := exec.CommandContext(ctx, "debootstrap", "--variant="+s.Variant, "--components=main", s.Suite, tmp, mirror)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("debootstrap %s failed (%v); last lines of %s:\n%s\nCheck that the Debian mirror %s is reachable (or set %s)",
				s.Suite, err, logPath, tail(logPath, 15), mirror, MirrorEnv)
		}
		cleanDir(filepath.Join(tmp, "var/cache/apt/archives"))
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

// emptyDir removes everything inside dir, keeping dir itself (with its
// owner and mode: a data directory's owner matters to its server).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
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
	return lines.Tail(string(b), n)
}
