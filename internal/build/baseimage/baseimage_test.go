package baseimage

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/cachedir"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/progress"
)

func TestSpecKeyIgnoresPackageOrderAndDuplicates(t *testing.T) {
	a := Spec{Packages: []string{"git", "busybox"}}
	b := Spec{Suite: "bookworm", Variant: "minbase", Packages: []string{"busybox", "git", "git"}}
	if a.Key() != b.Key() {
		t.Fatalf("same tree, different keys: %s vs %s", a.Key(), b.Key())
	}
	if a.Key() == (Spec{Packages: []string{"git"}}).Key() {
		t.Fatal("different package lists share a key")
	}
}

func TestSpecValidateRejectsShellAndOptionLikeNames(t *testing.T) {
	for _, bad := range []string{"git;rm -rf /", "--foo", "Git", "a", "x y", "$(id)"} {
		err := Spec{Packages: []string{bad}}.Validate()
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("package %q: error %v should reject and name it", bad, err)
		}
	}
	if err := (Spec{Packages: []string{"libc6", "g++", "python3.11"}}).Validate(); err != nil {
		t.Fatalf("valid names rejected: %v", err)
	}
}

func TestMirrorFromAptSources(t *testing.T) {
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	os.WriteFile(deb822, []byte("Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"), 0o644)
	if got := mirrorFromDeb822(deb822); got != "http://mirror.invalid/debian" {
		t.Fatalf("deb822 mirror = %q", got)
	}
	list := filepath.Join(dir, "sources.list")
	os.WriteFile(list, []byte("# comment\ndeb [arch=amd64] http://mirror.invalid/debian/ bookworm main\n"), 0o644)
	if got := mirrorFromList(list); got != "http://mirror.invalid/debian/" {
		t.Fatalf("list mirror = %q", got)
	}
	SetMirror("file:///srv/debian")
	t.Cleanup(func() { SetMirror("") })
	if got, err := Mirror(); err != nil || got != "file:///srv/debian" {
		t.Fatalf("override: %q %v", got, err)
	}
}

// makeTree builds a small tree with the entry kinds a Debian tree has.
func makeTree(t *testing.T, mtime time.Time) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "proc/1"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "proc/1/status"), []byte("runtime"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "usr/bin/tool"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.Chmod(filepath.Join(dir, "usr/bin/tool"), os.ModeSetuid|0o755))
	must(os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool-again")))
	must(os.Symlink("tool", filepath.Join(dir, "usr/bin/alias")))
	must(os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644))
	for _, p := range []string{"usr/bin/tool", "usr/bin", "usr", "proc/1/status"} {
		must(os.Chtimes(filepath.Join(dir, p), mtime, mtime))
	}
	return dir
}

func TestDirLayerIsDeterministicAndFaithful(t *testing.T) {
	out := t.TempDir()
	l1, err := DirLayer(makeTree(t, time.Unix(1000, 0)), filepath.Join(out, "a.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := DirLayer(makeTree(t, time.Unix(99999, 0)), filepath.Join(out, "b.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := l1.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Fatalf("same tree with other mtimes gave digests %s and %s", d1, d2)
	}

	entries := readLayer(t, filepath.Join(out, "a.tar.gz"))
	if h := entries["usr/bin/tool"]; h == nil || h.Mode&0o4000 == 0 || !h.ModTime.Equal(Epoch) {
		t.Errorf("setuid file wrongly recorded: %+v", h)
	}
	if h := entries["usr/bin/tool-again"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/tool" {
		t.Errorf("hard link not kept as a link: %+v", h)
	}
	if h := entries["usr/bin/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("symlink wrongly recorded: %+v", h)
	}
	if _, ok := entries["proc/1/status"]; ok {
		t.Error("contents of /proc were put in the layer")
	}
	if _, ok := entries["proc/"]; !ok {
		t.Error("the /proc mount point itself is missing")
	}
	if _, ok := entries[".complete"]; ok {
		t.Error("the cache marker leaked into the layer")
	}
}

func TestFilesLayerAndImageAreDeterministic(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	os.WriteFile(src, []byte("binary"), 0o600)
	files := []File{
		{Path: "/usr/local/bin/x", Source: src, Mode: 0o755},
		{Path: "/etc/app/config.yml", Data: []byte("a: 1\n"), Mode: 0o644},
		{Path: "/usr/local/bin/runc", Link: "/usr/sbin/runc"},
	}
	dir := t.TempDir()
	digest := func(out string) v1.Hash {
		l, err := FilesLayer(files, filepath.Join(dir, out))
		if err != nil {
			t.Fatal(err)
		}
		img, err := Image(v1.Config{Entrypoint: []string{"/usr/local/bin/x"}}, l)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		if cf.OS != "linux" || cf.Architecture != "amd64" || len(cf.RootFS.DiffIDs) != 1 || cf.Config.Env[0] != "PATH="+DefaultPath {
			t.Fatalf("config wrong: %+v", cf)
		}
		return d
	}
	if a, b := digest("1.tar.gz"), digest("2.tar.gz"); a != b {
		t.Fatalf("same inputs gave images %s and %s", a, b)
	}
	entries := readLayer(t, filepath.Join(dir, "1.tar.gz"))
	for _, want := range []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/x", "etc/app/config.yml", "usr/local/bin/runc"} {
		if entries[want] == nil {
			t.Errorf("layer lacks %s (has %v)", want, keys(entries))
		}
	}
	if entries["usr/local/bin/x"].Mode != 0o755 {
		t.Errorf("mode not taken from the File: %o", entries["usr/local/bin/x"].Mode)
	}
}

func readLayer(t *testing.T, path string) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func keys(m map[string]*tar.Header) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestCheckTag(t *testing.T) {
	for _, bad := range []string{"", ".hidden", "-rm", "..", "a#b", "a/b", "a:b", "a b", strings.Repeat("a", 129)} {
		if err := CheckTag(bad); err == nil {
			t.Errorf("CheckTag(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"bookworm-git", "a", "_x", "v9.1-pre1", strings.Repeat("a", 128)} {
		if err := CheckTag(ok); err != nil {
			t.Errorf("CheckTag(%q): %v", ok, err)
		}
	}
}

// TestNormalizeRemovesRunDependentBits: two runs of one recipe differ in
// ldconfig's auxiliary cache and in the days /etc/shadow records; after
// normalize neither depends on the run, and the rest is untouched.
func TestNormalizeRemovesRunDependentBits(t *testing.T) {
	tree := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(tree, "var/cache/ldconfig"), 0o700))
	must(os.MkdirAll(filepath.Join(tree, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(tree, "var/lib/apt/lists"), 0o755))
	must(os.WriteFile(filepath.Join(tree, "var/cache/ldconfig/aux-cache"), []byte("inodes"), 0o600))
	must(os.WriteFile(filepath.Join(tree, "etc/shadow"), []byte("root:*:20228:0:99999:7:::\netcd:!:20429::::::\nnobody:*::::::\n"), 0o640))
	must(os.WriteFile(filepath.Join(tree, "var/lib/apt/lists/mirror.invalid_debian_dists_bookworm_InRelease"),
		[]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nSuite: stable\nDate: Sat, 10 May 2025 08:00:00 UTC\n"), 0o644))
	date, err := archiveDate(tree)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 5, 10, 8, 0, 0, 0, time.UTC); !date.Equal(want) {
		t.Fatalf("archive date %v, want %v", date, want)
	}
	must(normalize(tree, date))
	if _, err := os.Stat(filepath.Join(tree, "var/cache/ldconfig/aux-cache")); !os.IsNotExist(err) {
		t.Errorf("aux-cache kept: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(tree, "etc/shadow"))
	day := date.Unix() / 86400
	want := fmt.Sprintf("root:*:%d:0:99999:7:::\netcd:!:%d::::::\nnobody:*::::::\n", day, day)
	if string(b) != want {
		t.Errorf("shadow:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(filepath.Join(tree, "etc/shadow")); st.Mode().Perm() != 0o640 {
		t.Errorf("shadow's mode changed to %o", st.Mode().Perm())
	}
	if _, err := archiveDate(t.TempDir()); err == nil || !strings.Contains(err.Error(), "Release") {
		t.Errorf("a tree without lists: %v", err)
	}
}

func TestSpecClear(t *testing.T) {
	plain := Spec{Packages: []string{"mariadb-server"}}
	a := Spec{Packages: []string{"mariadb-server"}, Clear: []string{"var/lib/mysql"}}
	b := Spec{Packages: []string{"mariadb-server"}, Clear: []string{"var/lib/mysql/", "var/lib/mysql"}}
	if a.Key() == plain.Key() || a.Key() != b.Key() {
		t.Fatalf("keys %s %s %s: a cleared directory is part of the tree's identity, spelled either way", plain.Key(), a.Key(), b.Key())
	}
	// Specs that clear nothing keep the keys they had (the engine's and the
	// registry's image tags are made from them).
	old := sha256.Sum256([]byte("1\nbookworm\nminbase\nmariadb-server"))
	if want := hex.EncodeToString(old[:])[:16]; plain.Key() != want {
		t.Fatalf("a spec without Clear changed key: %s, was %s", plain.Key(), want)
	}
	for _, bad := range []string{"/var/lib/mysql", "../etc", ".", ""} {
		if err := (Spec{Packages: []string{"busybox"}, Clear: []string{bad}}).Validate(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("Clear %q: %v", bad, err)
		}
	}
}

func TestBuildAllRefusesBadArgumentsBeforeBuilding(t *testing.T) {
	t.Cleanup(cachedir.Swap(t.TempDir()))
	p := progress.Discard()
	if _, err := BuildAll(t.Context(), p, []Spec{{Packages: []string{"busybox"}}}, nil); err == nil || !strings.Contains(err.Error(), "1 specs but 0 references") {
		t.Errorf("mismatched lengths: %v", err)
	}
	if _, err := BuildAll(t.Context(), p, []Spec{{Packages: []string{"$(id)"}}}, []string{"127.0.0.1:1/x:y"}); err == nil || !strings.Contains(err.Error(), "$(id)") {
		t.Errorf("a bad package name: %v", err)
	}
	if len(p.Steps()) != 0 {
		t.Errorf("something was built: %+v", p.Steps())
	}
}

// TestTreeLayerPlacesTheTreeAndLeavesOutWhatItIsTold: the tree lands under
// its path with the parents as directories, hard links name the placed
// path, and a skipped directory is absent with all below it.
func TestTreeLayerPlacesTheTreeAndLeavesOutWhatItIsTold(t *testing.T) {
	dir := t.TempDir()
	for p, text := range map[string]string{"bin/go": "go", "src/fmt/print.go": "package fmt", "test/x.go": "skipped", "doc/a/b": "skipped"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "bin/go"), filepath.Join(dir, "bin/go2")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "layer.tar.gz")
	if _, err := TreeLayer(dir, "/usr/local/go", []string{"test", "doc"}, out); err != nil {
		t.Fatal(err)
	}
	entries := readLayer(t, out)
	want := []string{"usr/", "usr/local/", "usr/local/go/", "usr/local/go/bin/", "usr/local/go/bin/go", "usr/local/go/bin/go2",
		"usr/local/go/src/", "usr/local/go/src/fmt/", "usr/local/go/src/fmt/print.go"}
	got := keys(entries)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("entries %q\nwant %q", got, want)
	}
	if h := entries["usr/local/go/bin/go2"]; h.Typeflag != tar.TypeLink || h.Linkname != "usr/local/go/bin/go" {
		t.Errorf("hard link: type %c to %q", h.Typeflag, h.Linkname)
	}
}
