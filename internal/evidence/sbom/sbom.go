// Package sbom builds the CycloneDX (JSON, spec 1.6) software bill of
// materials attached to every image the pipeline pushes. Its components
// come from three places:
//
//   - the Python distributions of the image's lock, each with its version
//     and sha256 hashes: pkg:pypi/<name>@<version>;
//   - the Debian packages installed in the image, read from its dpkg
//     status: pkg:deb/debian/<name>@<version>?arch=<arch>;
//   - every Go binary in the image, read from its build info
//     (debug/buildinfo): the binary as an application component whose
//     purl is its main module's, with its module dependencies nested under
//     it as libraries: pkg:golang/<module path>@<version>.
//
// ScanImage reads the last two from a go-containerregistry image, layer by
// layer, flattened as the image runs (a Scanner remembers each layer's
// findings by its digest); the lock is the caller's (the pipeline has it
// parsed already).
package sbom

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
	purl "github.com/package-url/packageurl-go"
)

// SpecVersion is the CycloneDX version written.
const SpecVersion = cdx.SpecVersion1_6

// PythonDist is one locked Python distribution.
type PythonDist struct {
	Name    string
	Version string
	SHA256  []string // hex, as the lock's --hash=sha256:… options give them
}

// DebPackage is one installed Debian package (dpkg status "install ok
// installed").
type DebPackage struct {
	Name         string
	Version      string
	Architecture string
	Source       string // source package, when it differs from Name
}

// GoModule is one module of a Go binary's build info.
type GoModule struct {
	Path    string
	Version string
	Sum     string // go.sum hash ("h1:…"), when the build info has one
}

// GoBinary is one Go program found in the image.
type GoBinary struct {
	File      string // path in the image, without a leading slash
	GoVersion string
	Main      GoModule
	Deps      []GoModule
}

// Subject names the image the SBOM describes.
type Subject struct {
	Name    string // repository, e.g. lhcbdirac/lhcbdirac
	Version string // release version or tag
	Digest  string // sha256:…, when known
}

// Tool names what made the SBOM (this pipeline and its commit).
type Tool struct{ Name, Version string }

// Contents are the components of one image.
type Contents struct {
	Python []PythonDist
	Debian []DebPackage
	Go     []GoBinary
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Build makes the BOM. Every Python distribution needs a name, a version
// and at least one well-formed sha256 (the lock is hash-pinned; one that
// is not is a broken lock, refused here rather than attested).
func Build(subject Subject, tool Tool, c Contents, at time.Time) (*cdx.BOM, error) {
	if subject.Name == "" {
		return nil, errors.New("sbom: subject name is empty")
	}
	bom := cdx.NewBOM()
	bom.SerialNumber = uuid.New().URN()
	root := cdx.Component{
		BOMRef:  "image:" + subject.Name,
		Type:    cdx.ComponentTypeContainer,
		Name:    subject.Name,
		Version: subject.Version,
	}
	if subject.Digest != "" {
		alg, hex, ok := strings.Cut(subject.Digest, ":")
		if !ok || alg != "sha256" || !hexSHA256.MatchString(hex) {
			return nil, fmt.Errorf("sbom: subject digest %q is not sha256:<64 hex>", subject.Digest)
		}
		root.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex}}
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: at.UTC().Format(time.RFC3339),
		Component: &root,
	}
	if tool.Name != "" {
		bom.Metadata.Tools = &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: tool.Name, Version: tool.Version,
		}}}
	}

	var comps []cdx.Component
	seen := map[string]bool{}
	for i, d := range c.Python {
		c, err := pythonComponent(d)
		if err != nil {
			return nil, fmt.Errorf("sbom: python distribution %d: %w", i+1, err)
		}
		if seen[c.BOMRef] {
			return nil, fmt.Errorf("sbom: python distribution %s listed twice", c.BOMRef)
		}
		seen[c.BOMRef] = true
		comps = append(comps, c)
	}
	for i, p := range c.Debian {
		c, err := debComponent(p)
		if err != nil {
			return nil, fmt.Errorf("sbom: debian package %d: %w", i+1, err)
		}
		if seen[c.BOMRef] {
			continue // one package, several architectures' status stanzas cannot collide: same ref is the same package
		}
		seen[c.BOMRef] = true
		comps = append(comps, c)
	}
	for _, b := range c.Go {
		c, err := goComponent(b)
		if err != nil {
			return nil, fmt.Errorf("sbom: go binary /%s: %w", b.File, err)
		}
		if seen[c.BOMRef] {
			continue
		}
		seen[c.BOMRef] = true
		comps = append(comps, c)
	}
	bom.Components = &comps
	return bom, nil
}

func pythonComponent(d PythonDist) (cdx.Component, error) {
	if d.Name == "" || d.Version == "" {
		return cdx.Component{}, fmt.Errorf("name %q version %q: both are required", d.Name, d.Version)
	}
	if len(d.SHA256) == 0 {
		return cdx.Component{}, fmt.Errorf("%s==%s has no sha256 (the lock is hash-pinned)", d.Name, d.Version)
	}
	var hashes []cdx.Hash
	for _, h := range d.SHA256 {
		h = strings.TrimPrefix(strings.ToLower(h), "sha256:")
		if !hexSHA256.MatchString(h) {
			return cdx.Component{}, fmt.Errorf("%s==%s: hash %q is not 64 hex digits", d.Name, d.Version, h)
		}
		hashes = append(hashes, cdx.Hash{Algorithm: cdx.HashAlgoSHA256, Value: h})
	}
	p := purl.NewPackageURL(purl.TypePyPi, "", normalizePython(d.Name), d.Version, nil, "").ToString()
	return cdx.Component{
		BOMRef: p, Type: cdx.ComponentTypeLibrary, Name: d.Name, Version: d.Version,
		PackageURL: p, Hashes: &hashes,
	}, nil
}

var pep503 = regexp.MustCompile(`[-_.]+`)

// normalizePython is PEP 503's name normalization, which the pypi purl
// type prescribes.
func normalizePython(name string) string {
	return pep503.ReplaceAllString(strings.ToLower(name), "-")
}

func debComponent(p DebPackage) (cdx.Component, error) {
	if p.Name == "" || p.Version == "" {
		return cdx.Component{}, fmt.Errorf("name %q version %q: both are required", p.Name, p.Version)
	}
	var q purl.Qualifiers
	if p.Architecture != "" {
		q = append(q, purl.Qualifier{Key: "arch", Value: p.Architecture})
	}
	u := purl.NewPackageURL(purl.TypeDebian, "debian", p.Name, p.Version, q, "").ToString()
	c := cdx.Component{BOMRef: u, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: u}
	if p.Source != "" && p.Source != p.Name {
		c.Properties = &[]cdx.Property{{Name: "debian:source", Value: p.Source}}
	}
	return c, nil
}

func goPURL(m GoModule) string {
	ns, name := "", m.Path
	if i := strings.LastIndex(m.Path, "/"); i >= 0 {
		ns, name = m.Path[:i], m.Path[i+1:]
	}
	return purl.NewPackageURL(purl.TypeGolang, ns, name, m.Version, nil, "").ToString()
}

func goComponent(b GoBinary) (cdx.Component, error) {
	if b.File == "" || b.Main.Path == "" {
		return cdx.Component{}, errors.New("a Go binary needs its path in the image and its main module")
	}
	ref := "file:/" + b.File
	props := []cdx.Property{{Name: "golang:file", Value: "/" + b.File}}
	if b.GoVersion != "" {
		props = append(props, cdx.Property{Name: "golang:version", Value: b.GoVersion})
	}
	if b.Main.Version == "" && len(b.Deps) == 0 {
		// Debian builds its Go packages outside module mode: the build
		// info names the package only; the dpkg status lists its package.
		props = append(props, cdx.Property{Name: "golang:modules", Value: "none recorded (built outside module mode)"})
	}
	c := cdx.Component{
		BOMRef: ref, Type: cdx.ComponentTypeApplication, Name: b.Main.Path, Version: b.Main.Version,
		PackageURL: goPURL(b.Main), Properties: &props,
	}
	deps := append([]GoModule(nil), b.Deps...)
	sort.Slice(deps, func(i, j int) bool { return deps[i].Path < deps[j].Path })
	var nested []cdx.Component
	seen := map[string]bool{}
	for _, m := range deps {
		if m.Path == "" {
			continue
		}
		u := goPURL(m)
		if seen[u] {
			continue
		}
		seen[u] = true
		d := cdx.Component{BOMRef: ref + "#" + u, Type: cdx.ComponentTypeLibrary, Name: m.Path, Version: m.Version, PackageURL: u}
		if m.Sum != "" {
			d.Properties = &[]cdx.Property{{Name: "golang:sum", Value: m.Sum}}
		}
		nested = append(nested, d)
	}
	if len(nested) > 0 {
		c.Components = &nested
	}
	return c, nil
}

// Encode writes the BOM as CycloneDX JSON of SpecVersion.
func Encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	if err := enc.EncodeVersion(bom, SpecVersion); err != nil {
		return nil, fmt.Errorf("sbom: encoding: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reads a CycloneDX JSON BOM.
func Decode(b []byte) (*cdx.BOM, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("sbom: decoding: %w", err)
	}
	if bom.BOMFormat != cdx.BOMFormat {
		return nil, fmt.Errorf("sbom: bomFormat %q, want %q", bom.BOMFormat, cdx.BOMFormat)
	}
	return &bom, nil
}

// Python lists the pypi components of a BOM (name → version), for checks
// such as "the SBOM lists every distribution of the lock".
func Python(bom *cdx.BOM) map[string]string {
	out := map[string]string{}
	if bom.Components == nil {
		return out
	}
	for _, c := range *bom.Components {
		if p, err := purl.FromString(c.PackageURL); err == nil && p.Type == purl.TypePyPi {
			out[p.Name] = p.Version
		}
	}
	return out
}

// MissingPython returns the distributions of want (a lock's) the BOM does
// not list with the same version and every one of their hashes.
func MissingPython(bom *cdx.BOM, want []PythonDist) []string {
	have := map[string]cdx.Component{}
	if bom.Components != nil {
		for _, c := range *bom.Components {
			if p, err := purl.FromString(c.PackageURL); err == nil && p.Type == purl.TypePyPi {
				have[p.Name+"@"+p.Version] = c
			}
		}
	}
	var missing []string
	for _, d := range want {
		key := normalizePython(d.Name) + "@" + d.Version
		c, ok := have[key]
		if !ok {
			missing = append(missing, d.Name+"=="+d.Version)
			continue
		}
		hashes := map[string]bool{}
		if c.Hashes != nil {
			for _, h := range *c.Hashes {
				hashes[h.Value] = true
			}
		}
		for _, h := range d.SHA256 {
			if !hashes[strings.TrimPrefix(strings.ToLower(h), "sha256:")] {
				missing = append(missing, d.Name+"=="+d.Version+" (hash "+h+")")
				break
			}
		}
	}
	return missing
}
