//go:build integration

package pinger_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"dagger.io/dagger"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lhcbdirac/lhcbdirac-pipeline/dips/dipstest"
	"github.com/lhcbdirac/lhcbdirac-pipeline/images/pinger"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/baseimage"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/gobuild"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/enginecheck"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
)

// TestIntegrationPingerImage builds the pinger image in the real engine,
// publishes it twice (same digest), checks its size, then runs it as a
// Dagger service and pings a DIPS test server on the host through it, from a
// client container over the Dagger network — as Consul would.
func TestIntegrationPingerImage(t *testing.T) {
	f := testengine.Foundation(t)
	p := testenv.Reporter(t)
	ctx := t.Context()
	root, err := hostimages.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	base, err := baseimage.Build(ctx, p, enginecheck.BaseSpec, enginecheck.BaseRef(f.Registry))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := gobuild.PrepareModules(ctx, p, root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := gobuild.NewBuilder(ctx, f.Client, p, base, root, mods)
	if err != nil {
		t.Fatal(err)
	}
	img := pinger.Recipe(f.Client, b, "v0.0.0-test")

	var digests []string
	for i := range 2 {
		ref, err := img.Publish(ctx, fmt.Sprintf("%s/lhcbdirac-pipeline/test-pinger:run%d", f.Registry, i))
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, ref[strings.LastIndex(ref, "@")+1:])
	}
	if digests[0] != digests[1] {
		t.Fatalf("the same inputs published as %s and %s", digests[0], digests[1])
	}
	// Rebuild from scratch (a new recipe value, same inputs): same digest.
	again, err := pinger.Recipe(f.Client, b, "v0.0.0-test").Publish(ctx, f.Registry+"/lhcbdirac-pipeline/test-pinger:again")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(again, digests[0]) {
		t.Fatalf("rebuild gave %s, first build %s", again, digests[0])
	}
	size := imageSize(t, ctx, f.Registry+"/lhcbdirac-pipeline/test-pinger:run0")
	t.Logf("pinger image: %s, %.1f MB compressed", digests[0], float64(size)/1e6)
	if size > 15<<20 {
		t.Fatalf("pinger image is %d bytes, over 15 MB", size)
	}

	// A DIPS server on the host, reached by the pinger as "dirac-host".
	dir := t.TempDir()
	pki, err := dipstest.NewPKI(dir, "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	host, err := pki.Host("host", "dirac-host")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dipstest.Start(dipstest.Options{HostCert: host.CertFile, HostKey: host.KeyFile, CADir: pki.CADir(), Services: []string{"DataManagement/FileCatalog"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hostSvc := f.Client.Host().Service([]dagger.PortForward{{Frontend: srv.Port(), Backend: srv.Port()}})
	gridSecurity := f.Client.Host().Directory(dir, dagger.HostDirectoryOpts{Include: []string{"hostcert.pem", "hostkey.pem", "certificates/*"}})
	pingerSvc := img.
		WithMountedDirectory("/opt/dirac/etc/grid-security", gridSecurity).
		WithEnvVariable("PINGER_ALLOW", fmt.Sprintf("dirac-host:%d", srv.Port())).
		WithServiceBinding("dirac-host", hostSvc).
		AsService(dagger.ContainerAsServiceOpts{UseEntrypoint: true})
	client := f.Client.Container().From(base).WithServiceBinding("pinger", pingerSvc).
		WithEnvVariable("BUST", time.Now().String())
	url := fmt.Sprintf("http://pinger:%d/ping?host=dirac-host&port=%d&service=DataManagement/FileCatalog", pinger.Port, srv.Port())
	out, err := client.WithExec([]string{"busybox", "wget", "-q", "-O", "-", url}).Stdout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"name":"DataManagement/FileCatalog"`) || srv.Calls() != 1 {
		t.Fatalf("ping through the pinger image: %s (server saw %d calls)", out, srv.Calls())
	}
	code, err := client.WithExec([]string{"sh", "-c", fmt.Sprintf(`busybox wget -S -q -O /dev/null "http://pinger:%d/ping?host=elsewhere&port=1&service=A/B" 2>&1 | head -1`, pinger.Port)}).Stdout(ctx)
	if err != nil || !strings.Contains(code, "403") {
		t.Fatalf("a target outside the allow-list: %q %v", code, err)
	}
}

func imageSize(t *testing.T, ctx context.Context, ref string) int64 {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	total := m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total
}
