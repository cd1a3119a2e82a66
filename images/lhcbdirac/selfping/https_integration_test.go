//go:build integration

package selfping_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/lines"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/releaseimage"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
)

// The 12.0.21 release image, built and pushed by the test itself
// (LHCBDIRAC_SELFPING_IMAGE names another instead); LHCBDIRAC_DIRAC_TREE,
// when set, is an /opt/dirac already extracted (from such an image,
// possibly with a hotfix) to use instead.
func releaseImage(t *testing.T) string {
	if r := settings.Read("LHCBDIRAC_SELFPING_IMAGE"); r != "" {
		return r
	}
	return releaseimage.Ref(t)
}

// TestHTTPSPingOfARealTornadoService starts a real DIRAC HTTPS service
// from the release image (Framework/TornadoNotification: it opens no
// database) with DIRAC's own tornado-start-all, in a network namespace of
// its own (Tornado listens on every address), and health-checks it with
// dirac-self-ping -protocol https (dips.PingHTTPS: POST method=ping). It
// fails, with the service's log, when the service cannot start: PyPI's
// tornado 5.1.1 lacks what DIRAC needs of DIRACGrid's (SSLIOStream.configure
// at import); the image installs it patched (patches/tornado-5.1.1.patch),
// and catalog.Catalog.HTTPSProblem tells from the sources which one a tree has.
func TestHTTPSPingOfARealTornadoService(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is needed to give the service a network namespace of its own")
	}
	tree := settings.Read("LHCBDIRAC_DIRAC_TREE")
	if tree == "" {
		tree = filepath.Join(t.TempDir(), "opt", "dirac")
		extractDIRAC(t, releaseImage(t), filepath.Dir(filepath.Dir(tree)))
	}
	python := filepath.Join(tree, "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("no DIRAC installation at %s: %v", tree, err)
	}

	root := t.TempDir() // DIRAC_ROOT_PATH: etc/dirac.cfg and etc/grid-security
	pki, err := dipstest.NewPKI(filepath.Join(root, "etc", "grid-security"), "HTTPS self-ping test CA")
	if err != nil {
		t.Fatal(err)
	}
	host, err := pki.Host("host", "tornado.example", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	const port = 8443
	cfg := fmt.Sprintf(`DIRAC
{
  Security
  {
    CertFile = %s
    KeyFile = %s
    CALocation = %s
  }
}
Systems
{
  Framework
  {
    Services
    {
      TornadoNotification
      {
        Protocol = https
        Port = %d
      }
    }
  }
}
`, host.CertFile, host.KeyFile, pki.CADir(), port)
	if err := os.WriteFile(filepath.Join(root, "etc", "dirac.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "dirac-self-ping")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lhcbdirac/lhcbdirac-pipeline/images/lhcbdirac/dirac-self-ping").CombinedOutput(); err != nil {
		t.Fatalf("building dirac-self-ping: %v\n%s", err, out)
	}
	logFile := filepath.Join(root, "service.log")
	// The namespace ends with the script; the service with it.
	script := `set -u
ip link set lo up || exit 2
"$PYTHON" "$TREE/bin/tornado-start-all" >"$LOG" 2>&1 &
svc=$!
i=0
while [ $i -lt 90 ]; do
  if ! kill -0 $svc 2>/dev/null; then echo "the service exited"; exit 1; fi
  if "$PING" -protocol https -v -cert "$CERT" -key "$KEY" -ca-dir "$CA" "$TARGET"; then kill $svc; exit 0; fi
  i=$((i+1)); sleep 1
done
kill $svc; exit 1
`
	cmd := exec.Command("unshare", "--net", "sh", "-c", script)
	cmd.Env = []string{"PATH=" + settings.Read("PATH"), "PYTHON=" + python, "TREE=" + tree, "LOG=" + logFile, "PING=" + bin,
		"CERT=" + host.CertFile, "KEY=" + host.KeyFile, "CA=" + pki.CADir(), "TARGET=" + fmt.Sprintf("%d/Framework/TornadoNotification", port),
		"DIRAC_ROOT_PATH=" + root, "DIRAC_USE_TORNADO_IOLOOP=yes", "HOME=" + root}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	svcLog, _ := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("the HTTPS ping of Framework/TornadoNotification did not pass (%v after %s):\n%s\n--- service log (last lines):\n%s", err, time.Since(start).Round(time.Second), lines.Tail(out.String(), 5), lines.Tail(string(svcLog), 25))
	}
	want := fmt.Sprintf("https://localhost:%d/Framework/TornadoNotification OK: version ", port)
	if !strings.Contains(out.String(), want) {
		t.Fatalf("dirac-self-ping passed without its reply line %q:\n%s", want, out.String())
	}
	// The service saw our host certificate: DIRAC logs each call with the
	// caller it authenticated.
	if !strings.Contains(string(svcLog), "Framework/TornadoNotification: ping") {
		t.Fatalf("the service log does not show the ping:\n%s", lines.Tail(string(svcLog), 25))
	}
	t.Logf("%s (%s)", strings.TrimSpace(out.String()), time.Since(start).Round(100*time.Millisecond))
}

// extractDIRAC writes the image's /opt/dirac under dst (dst/opt/dirac):
// files, directories, symbolic and hard links, as the image has them.
func extractDIRAC(t *testing.T, ref, dst string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("the release image %s: %v", ref, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := path.Clean("/" + h.Name)
		if !strings.HasPrefix(n, "/opt/dirac/") {
			continue
		}
		p := filepath.Join(dst, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600); err == nil {
				_, err = io.Copy(f, tr)
				f.Close()
			}
		case tar.TypeSymlink:
			os.Remove(p)
			err = os.Symlink(h.Linkname, p)
		case tar.TypeLink:
			os.Remove(p)
			err = os.Link(filepath.Join(dst, filepath.FromSlash(path.Clean("/"+h.Linkname))), p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
