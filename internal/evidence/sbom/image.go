package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// dpkgStatusLimit bounds the dpkg status file read into memory (Debian's
// largest installs have a few MiB).
const dpkgStatusLimit = 64 << 20

// buildInfoMagic starts the .go.buildinfo section of every Go binary since
// Go 1.13 (debug/buildinfo looks for the same bytes).
var buildInfoMagic = []byte("\xff Go buildinf:")

// ImageContents are the components ScanImage found.
type ImageContents struct {
	Debian []DebPackage
	Go     []GoBinary
	// Skipped are ELF files whose build info could not be read, with why
	// (a stripped or corrupt Go binary): listed, never fatal.
	Skipped []string
}

// ScanImage walks img's flattened filesystem once (mutate.Extract, which
// applies whiteouts) and reads the dpkg status (and status.d, as
// distroless images keep it) and the build info of every Go ELF binary.
// Memory stays bounded: files stream past; an ELF file is copied to one
// reused temporary file while its bytes are searched for the build-info
// magic, and only a file that has it is parsed by debug/buildinfo.
func ScanImage(img v1.Image) (*ImageContents, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	spool, err := os.CreateTemp("", "sbom-elf-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	out := &ImageContents{}
	tr := tar.NewReader(rc)
	head := make([]byte, 4)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("sbom: reading the image's filesystem: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case name == "var/lib/dpkg/status" || strings.HasPrefix(name, "var/lib/dpkg/status.d/") && !strings.HasSuffix(name, ".md5sums"):
			b, err := io.ReadAll(io.LimitReader(tr, dpkgStatusLimit+1))
			if err != nil {
				return nil, fmt.Errorf("sbom: reading /%s: %w", name, err)
			}
			if len(b) > dpkgStatusLimit {
				return nil, fmt.Errorf("sbom: /%s is over %d MiB", name, dpkgStatusLimit>>20)
			}
			pkgs, err := ParseDpkgStatus(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("sbom: /%s: %w", name, err)
			}
			out.Debian = append(out.Debian, pkgs...)
			continue
		}
		if h.Size < 64 {
			continue
		}
		if _, err := io.ReadFull(tr, head); err != nil {
			return nil, fmt.Errorf("sbom: reading /%s: %w", name, err)
		}
		if string(head) != "\x7fELF" {
			continue
		}
		bin, ok, err := readGoELF(spool, head, tr)
		if err != nil {
			return nil, fmt.Errorf("sbom: reading /%s: %w", name, err)
		}
		if !ok {
			continue
		}
		if bin == nil {
			out.Skipped = append(out.Skipped, "/"+name)
			continue
		}
		bin.File = name
		out.Go = append(out.Go, *bin)
	}
	sort.Slice(out.Debian, func(i, j int) bool { return out.Debian[i].Name < out.Debian[j].Name })
	sort.Slice(out.Go, func(i, j int) bool { return out.Go[i].File < out.Go[j].File })
	return out, nil
}

// readGoELF copies one ELF file to spool, watching for the build-info
// magic; ok says whether it was seen, bin is the parsed build info (nil
// when debug/buildinfo refused the file).
func readGoELF(spool *os.File, head []byte, r io.Reader) (bin *GoBinary, ok bool, err error) {
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, false, err
	}
	if err := spool.Truncate(0); err != nil {
		return nil, false, err
	}
	w := &magicWriter{}
	if _, err := io.Copy(io.MultiWriter(spool, w), io.MultiReader(bytes.NewReader(head), r)); err != nil {
		return nil, false, err
	}
	if !w.seen {
		return nil, false, nil
	}
	info, err := buildinfo.Read(spool)
	if err != nil {
		return nil, true, nil
	}
	b := &GoBinary{GoVersion: info.GoVersion, Main: GoModule{Path: info.Main.Path, Version: info.Main.Version, Sum: info.Main.Sum}}
	if b.Main.Path == "" {
		b.Main.Path = info.Path // a binary built outside module mode names only its package
	}
	for _, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		b.Deps = append(b.Deps, GoModule{Path: m.Path, Version: m.Version, Sum: m.Sum})
	}
	return b, true, nil
}

// magicWriter remembers whether the bytes written contain buildInfoMagic,
// across write boundaries.
type magicWriter struct {
	tail []byte
	seen bool
}

func (m *magicWriter) Write(p []byte) (int, error) {
	if m.seen {
		return len(p), nil
	}
	k := len(buildInfoMagic) - 1
	if len(m.tail) > 0 {
		joined := append(append([]byte(nil), m.tail...), p[:min(len(p), k)]...)
		if bytes.Contains(joined, buildInfoMagic) {
			m.seen = true
			return len(p), nil
		}
	}
	if bytes.Contains(p, buildInfoMagic) {
		m.seen = true
		return len(p), nil
	}
	if len(p) >= k {
		m.tail = append(m.tail[:0], p[len(p)-k:]...)
	} else {
		m.tail = append(m.tail, p...)
		if len(m.tail) > k {
			m.tail = m.tail[len(m.tail)-k:]
		}
	}
	return len(p), nil
}

// ParseDpkgStatus reads a dpkg status file and returns the packages whose
// Status is "install ok installed" (removed packages keep a stanza with
// their configuration files; they are not in the image).
func ParseDpkgStatus(r io.Reader) ([]DebPackage, error) {
	var out []DebPackage
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cur DebPackage
	var status string
	line := 0
	flush := func() error {
		if cur.Name == "" && cur.Version == "" && status == "" {
			return nil
		}
		if cur.Name == "" {
			return fmt.Errorf("stanza ending at line %d has no Package field", line)
		}
		if strings.HasSuffix(status, " installed") && !strings.HasPrefix(status, "deinstall") && !strings.HasPrefix(status, "purge") {
			if cur.Version == "" {
				return fmt.Errorf("package %s (line %d) is installed but has no Version", cur.Name, line)
			}
			out = append(out, cur)
		}
		cur, status = DebPackage{}, ""
		return nil
	}
	for sc.Scan() {
		line++
		t := sc.Text()
		if strings.TrimSpace(t) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if t[0] == ' ' || t[0] == '\t' {
			continue // continuation of a multi-line field (Description, Conffiles)
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not a field", line, truncate(t, 60))
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "Architecture":
			cur.Architecture = v
		case "Status":
			status = v
		case "Source":
			cur.Source, _, _ = strings.Cut(v, " ") // "Source: name (version)"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no installed package")
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
