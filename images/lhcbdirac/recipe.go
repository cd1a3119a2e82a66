// Package lhcbdirac is the lhcbdirac service image: its recipe (here),
// its programs (entrypoint/ over diracentry/, dirac-self-ping/ over
// selfping/), the FIXTURE sources of the pipeline's fast tests (fixture/)
// and its smoke test, which runs every service as Marathon would.
package lhcbdirac

import (
	"fmt"
	"strings"

	"dagger.io/dagger"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// DiracRoot is where DIRAC is installed; dirac.cfg and grid-security are
// mounted under DiracRoot/etc.
const DiracRoot = "/opt/dirac"

// EntrypointPath keeps the seed's entrypoint path, which app definitions and
// their COMMAND health checks name.
const EntrypointPath = DiracRoot + "/dockerEntrypoint.sh"

// Inputs are what the lhcbdirac image is made from.
type Inputs struct {
	Base      string // Debian-like base pinned by digest
	Version   version.Version
	Installer *dagger.File // the DIRACOS2 installer (DIRACOS-Linux-x86_64.sh)
	// InstallerFrom records where the installer came from (a label).
	InstallerFrom string
	// Sources are installed from git checkouts (hotfix or fixture), DIRAC
	// first. A release without them is pip-installed from PipIndexURL.
	Sources     []sources.Source
	SourceDirs  []*dagger.Directory // one per Source
	PipIndexURL string              // "" means offline: --no-index
	// Rerun, when set, makes Dagger install again instead of using its
	// cache; it never reaches the image (reproducibility tests).
	Rerun string
}

// bashrc is what the entrypoint sources: DIRACOS's environment plus where
// DIRAC finds its configuration and certificates.
const bashrc = `# Written by the lhcbdirac recipe; sourced by the entrypoint.
. /opt/dirac/diracos/diracosrc
export DIRAC=/opt/dirac
export DIRACSYSCONFIG=/opt/dirac/etc/dirac.cfg
export X509_CERT_DIR=/opt/dirac/etc/grid-security/certificates
`

// PipArgs is the pip command line of the install step.
func (in Inputs) PipArgs() []string {
	args := []string{"pip", "install", "--no-compile", "--no-cache-dir"}
	if in.PipIndexURL == "" {
		// Offline: everything comes from the checkouts; the build tools are
		// the base's (no isolated build environment to download).
		args = append(args, "--no-index", "--no-deps", "--no-build-isolation")
	} else {
		args = append(args, "--index-url", in.PipIndexURL)
	}
	for _, s := range in.Sources {
		args = append(args, "/tmp/src/"+s.Name)
	}
	if !in.has("LHCbDIRAC") {
		args = append(args, "LHCbDIRAC=="+in.Version.PEP440())
	}
	return args
}

func (in Inputs) has(name string) bool {
	for _, s := range in.Sources {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Validate reports inputs the recipe cannot build from.
func (in Inputs) Validate() error {
	if len(in.Sources) != len(in.SourceDirs) {
		return fmt.Errorf("lhcbdirac: %d sources but %d source directories", len(in.Sources), len(in.SourceDirs))
	}
	if in.PipIndexURL == "" && (!in.has("DIRAC") || !in.has("LHCbDIRAC")) {
		return fmt.Errorf("lhcbdirac: offline (no pip index configured) both DIRAC and LHCbDIRAC must come from git: set LHCBDIRAC_PIP_INDEX_URL, or DIRAC_REPO and LHCB_DIRAC_REPO")
	}
	return nil
}

// Recipe is the service image: DIRACOS2 and DIRAC/LHCbDIRAC installed
// with the real steps (the installer run in /opt/dirac, pip install into
// its environment), the Go entrypoint and dirac-self-ping, the mount points.
// The install runs in one container; only /opt/dirac, with fixed
// timestamps and no bytecode, is copied onto a fresh base, so the same
// inputs give the same digest.
func Recipe(c *dagger.Client, b *gobuild.Builder, in Inputs) *dagger.Container {
	entry := b.Binary("./images/lhcbdirac/entrypoint")
	install := c.Container().From(in.Base).
		WithEnvVariable("PATH", baseimage.StandardPath).
		WithEnvVariable("SOURCE_DATE_EPOCH", "0").
		WithEnvVariable("PYTHONDONTWRITEBYTECODE", "1").
		WithEnvVariable("LHCBDIRAC_RERUN", in.Rerun).
		WithFile(EntrypointPath, entry).
		WithFile("/tmp/"+installerName, in.Installer, dagger.ContainerWithFileOpts{Permissions: 0o755}).
		WithWorkdir(DiracRoot).
		WithExec([]string{"bash", "/tmp/" + installerName}).
		WithNewFile(DiracRoot+"/bashrc", bashrc)
	for i, s := range in.Sources {
		install = install.WithDirectory("/tmp/src/"+s.Name, in.SourceDirs[i])
	}
	// pip runs through the entrypoint: the build sets up the same DIRAC
	// environment a container start does.
	install = install.
		WithExec(append([]string{EntrypointPath}, in.PipArgs()...)).
		WithExec([]string{"find", DiracRoot, "-depth", "-name", "__pycache__", "-type", "d", "-exec", "rm", "-rf", "{}", "+"}).
		WithExec([]string{"mkdir", "-p", DiracRoot + "/etc/grid-security/certificates"}).
		// Fixed times, symlinks included (Directory.WithTimestamps follows
		// symlinks, and a venv's bin/python points outside /opt/dirac).
		WithExec([]string{"find", DiracRoot, "-exec", "touch", "--no-dereference", "--date=@0", "{}", "+"})

	ctr := c.Container().From(in.Base).
		WithDirectory(DiracRoot, install.Directory(DiracRoot)).
		WithFile("/usr/local/bin/dirac-self-ping", b.Binary("./images/lhcbdirac/dirac-self-ping")).
		WithEnvVariable("PATH", baseimage.StandardPath).
		WithEnvVariable("LHCB_DIRAC_VERSION", in.Version.Raw).
		WithWorkdir(DiracRoot).
		WithEntrypoint([]string{EntrypointPath}).
		WithLabel("org.opencontainers.image.title", "lhcbdirac").
		WithLabel("org.opencontainers.image.version", in.Version.Raw).
		WithLabel("org.opencontainers.image.base.name", in.Base).
		WithLabel("org.lhcbdirac.diracos.installer", in.InstallerFrom).
		WithLabel("org.lhcbdirac.pipeline.go-version", b.GoVersion())
	if in.PipIndexURL != "" {
		ctr = ctr.WithLabel("org.lhcbdirac.pip.index", redact.URL(in.PipIndexURL))
	}
	for _, s := range in.Sources {
		key := "org.lhcbdirac." + strings.ToLower(s.Name)
		ctr = ctr.WithLabel(key+".repo", s.Repo).
			WithLabel(key+".branch", s.Branch).
			WithLabel(key+".commit", s.Commit)
	}
	return ctr
}

const installerName = "DIRACOS-Linux-x86_64.sh"
