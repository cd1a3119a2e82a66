package sbom_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/evidence/sbom"
)

const status = `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: python3.11
Status: install ok installed
Architecture: amd64
Source: python3.11 (3.11.2-6)
Version: 3.11.2-6+deb12u6

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-0+deb12u1
`

func TestParseDpkgStatusKeepsInstalledPackages(t *testing.T) {
	got, err := sbom.ParseDpkgStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "libc6" || got[0].Source != "glibc" || got[1].Source != "python3.11" || got[2].Architecture != "all" {
		t.Fatalf("got %+v", got)
	}
	if _, err := sbom.ParseDpkgStatus(strings.NewReader("Package: x\nStatus: install ok installed\n\nbroken line\n")); err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("a line that is not a field must be refused naming it: %v", err)
	}
}

// goBinary builds one of the pipeline's own programs (the pinger), a Go
// ELF binary whose build info lists its modules, and returns it with the
// modules `go version -m` (the Go tool's own reading) sees in it.
func goBinary(t *testing.T) ([]byte, map[string]string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pinger")
	cmd := exec.Command("go", "build", "-o", out, "github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger/cmd/pinger")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the pinger: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	v, err := exec.Command("go", "version", "-m", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]string{}
	for _, line := range strings.Split(string(v), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "dep" {
			mods[f[1]] = f[2]
		}
	}
	if len(mods) == 0 {
		t.Fatalf("go version -m lists no module of the pinger:\n%s", v)
	}
	return b, mods
}

func layer(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	return buf.Bytes()
}

func TestScanImageReadsDpkgAndGoBinariesAfterWhiteouts(t *testing.T) {
	bin, mods := goBinary(t)
	l1 := layer(t, map[string][]byte{
		"var/lib/dpkg/status": []byte(status),
		"usr/bin/tool":        bin,
		"usr/bin/gone":        bin,
		"usr/lib/libfake.so":  append([]byte("\x7fELF"), bytes.Repeat([]byte{0}, 200)...), // ELF without build info
		"etc/hostname":        []byte("x\n"),
	})
	l2 := layer(t, map[string][]byte{"usr/bin/.wh.gone": nil}) // removed in the upper layer
	img := empty.Image
	for _, l := range [][]byte{l1, l2} {
		tl, err := tarball.LayerFromReader(bytes.NewReader(l))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, tl); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sbom.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Debian) != 3 {
		t.Fatalf("debian %+v", got.Debian)
	}
	if len(got.Go) != 1 || got.Go[0].File != "usr/bin/tool" {
		t.Fatalf("go binaries %+v: want the one the upper layer did not remove", got.Go)
	}
	deps := map[string]string{}
	for _, d := range got.Go[0].Deps {
		deps[d.Path] = d.Version
	}
	if !strings.HasPrefix(got.Go[0].GoVersion, "go") || got.Go[0].Main.Path != "github.com/lhcbdirac/lhcbdirac-pipeline" {
		t.Fatalf("build info %+v: want the Go version and the main module", got.Go[0])
	}
	for m, v := range mods {
		if deps[m] != v {
			t.Errorf("module %s %s of the pinger (go version -m) is %q in the scan", m, v, deps[m])
		}
	}
	if len(deps) != len(mods) {
		t.Errorf("scan found %d modules, go version -m %d", len(deps), len(mods))
	}
}

func TestSBOMValidatesAgainstCycloneDXSchema(t *testing.T) {
	bin, _ := goBinary(t)
	tl, err := tarball.LayerFromReader(bytes.NewReader(layer(t, map[string][]byte{"var/lib/dpkg/status": []byte(status), "usr/bin/tool": bin})))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.AppendLayers(empty.Image, tl)
	found, err := sbom.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	py := []sbom.PythonDist{
		{Name: "LHCbDIRAC", Version: "12.0.21", SHA256: []string{strings.Repeat("a", 64)}},
		{Name: "zope.interface", Version: "7.2", SHA256: []string{strings.Repeat("b", 64), "sha256:" + strings.Repeat("c", 64)}},
	}
	d, _ := img.Digest()
	bom, err := sbom.Build(sbom.Subject{Name: "lhcbdirac/lhcbdirac", Version: "v12.0.21", Digest: d.String()}, sbom.Tool{Name: "lhcbdirac-pipeline", Version: "abc"},
		sbom.Contents{Python: py, Debian: found.Debian, Go: found.Go}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := sbom.Encode(bom)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, b)

	purls := map[string]bool{}
	for _, c := range *bom.Components {
		purls[c.PackageURL] = true
	}
	for _, want := range []string{
		"pkg:pypi/lhcbdirac@12.0.21", "pkg:pypi/zope-interface@7.2",
		"pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64", "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u1?arch=all",
	} {
		if !purls[want] {
			t.Errorf("no component %s in %v", want, purls)
		}
	}
	if m := sbom.MissingPython(bom, py); len(m) != 0 {
		t.Fatalf("the lock's distributions are all in the SBOM, yet missing %v", m)
	}
	if m := sbom.MissingPython(bom, append(py, sbom.PythonDist{Name: "DIRAC", Version: "9.0.0", SHA256: []string{strings.Repeat("d", 64)}})); len(m) != 1 || m[0] != "DIRAC==9.0.0" {
		t.Fatalf("missing %v, want DIRAC==9.0.0", m)
	}
	// Read back.
	back, err := sbom.Decode(b)
	if err != nil || back.Metadata.Component.Name != "lhcbdirac/lhcbdirac" {
		t.Fatalf("decode: %v %+v", err, back)
	}
}

func TestBuildRefusesAnUnpinnedDistribution(t *testing.T) {
	_, err := sbom.Build(sbom.Subject{Name: "x"}, sbom.Tool{}, sbom.Contents{Python: []sbom.PythonDist{{Name: "DIRAC", Version: "9.0"}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "DIRAC==9.0 has no sha256") {
		t.Fatalf("a distribution without hash must be refused by name: %v", err)
	}
	_, err = sbom.Build(sbom.Subject{Name: "x"}, sbom.Tool{}, sbom.Contents{Python: []sbom.PythonDist{{Name: "DIRAC", Version: "9.0", SHA256: []string{"abc"}}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), `"abc"`) {
		t.Fatalf("a malformed hash must be refused naming it: %v", err)
	}
}

// validate checks b against CycloneDX's 1.6 JSON schema, as the
// cyclonedx-go module ships it (its schema/ directory, with the SPDX and
// JSF schemas it refers to).
func validate(t *testing.T, b []byte) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("finding the cyclonedx-go module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	files := map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":  "bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schemax.json",
	}
	c := jsonschema.NewCompiler()
	for url, f := range files {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("CycloneDX schema: %v", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("the SBOM does not validate against CycloneDX 1.6: %v", err)
	}
	var probe map[string]any
	json.Unmarshal(b, &probe)
	if probe["specVersion"] != "1.6" || probe["bomFormat"] != cdx.BOMFormat {
		t.Fatalf("spec %v format %v", probe["specVersion"], probe["bomFormat"])
	}
}
