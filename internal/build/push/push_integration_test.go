//go:build integration

package push_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dagger.io/dagger"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/bcrypt"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/push"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/hostimages"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/host/registry"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testengine"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testenv"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/testlib/testproc"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

func image(c *dagger.Client, content string) *dagger.Container {
	return c.Container().WithNewFile("/payload", content).WithEntrypoint([]string{"/payload"})
}

func tagDigest(t *testing.T, ref string) (string, bool) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r, remote.WithContext(t.Context()))
	if err != nil {
		return "", false
	}
	return d.Digest.String(), true
}

// TestIntegrationPushByDigestThenMoveTags: pushing moves no tag; the digest
// pushed is Dagger's own in canonical form; MoveTags points the version (and devel for -pre)
// at the pushed digests.
func TestIntegrationPushByDigestThenMoveTags(t *testing.T) {
	f := testengine.Foundation(t)
	ctx := t.Context()
	run := fmt.Sprint(os.Getpid())
	v, _ := version.Parse("v9.1.0-pre" + run)
	var pushed []push.Pushed
	for _, n := range []string{"a", "b"} {
		ctr := image(f.Client, n+run)
		repo := f.Registry + "/lhcbdirac-pipeline/push-test-" + n
		p, err := push.ByDigest(ctx, ctr, n, repo, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		// Dagger's own publish of the same container, in canonical form
		// (times zeroed, gzip at push.Level), is the image pushed.
		published, err := ctr.Publish(ctx, repo+":dagger-"+run)
		if err != nil {
			t.Fatal(err)
		}
		pr, _ := name.ParseReference(published)
		pimg, err := remote.Image(pr, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		canon, err := mutate.Canonical(pimg, tarball.WithCompressionLevel(push.Level))
		if err != nil {
			t.Fatal(err)
		}
		if cd, _ := canon.Digest(); cd.String() != p.Digest {
			t.Fatalf("pushed %s, Dagger publishes %s, canonical %s", p.Digest, published, cd)
		}
		if _, ok := tagDigest(t, repo+":"+v.Raw); ok {
			t.Fatal("pushing by digest moved the version tag")
		}
		pushed = append(pushed, p)
	}
	if err := push.CheckTags(ctx, pushed, push.Tags(v, "")); err != nil {
		t.Fatalf("no tag exists yet: %v", err)
	}
	if err := push.MoveTags(ctx, pushed, push.Tags(v, "")); err != nil {
		t.Fatal(err)
	}
	// The same content again: the tags stay where they are, nothing to refuse.
	if err := push.CheckTags(ctx, pushed, push.Tags(v, "")); err != nil {
		t.Fatalf("the same digests again: %v", err)
	}
	// Other content for the same version: refused naming both digests;
	// devel, which follows the newest pre-release, may move.
	other := pushed[0]
	other.Digest = pushed[1].Digest
	err := push.CheckTags(ctx, []push.Pushed{other}, push.Tags(v, ""))
	var moved *push.TagMovedError
	if !errors.As(err, &moved) || !strings.Contains(err.Error(), pushed[0].Digest) || !strings.Contains(err.Error(), pushed[1].Digest) || strings.Contains(err.Error(), ":devel") {
		t.Fatalf("a moved version tag: %v", err)
	}
	for _, p := range pushed {
		for _, tag := range []string{v.Raw, "devel"} {
			if d, ok := tagDigest(t, p.Repo+":"+tag); !ok || d != p.Digest {
				t.Fatalf("%s:%s -> %s, want %s", p.Repo, tag, d, p.Digest)
			}
		}
	}
	final, _ := version.Parse("v9.1.0")
	if tags := push.Tags(final, ""); len(tags) != 1 || tags[0] != "v9.1.0" {
		t.Fatalf("a final version moves only its own tag: %v", tags)
	}
	if tags := push.Tags(final, "0123456789ab"); len(tags) != 1 || tags[0] != "v9.1.0-hotfix.0123456789ab" {
		t.Fatalf("a hotfix build has a tag of its own: %v", tags)
	}
}

// TestIntegrationRegistryCredentialsOnlyFromDockerConfig runs a registry that
// requires a password: the push works with the Docker config, fails clearly
// without it, and the planted password appears neither in the image nor in
// any output.
func TestIntegrationRegistryCredentialsOnlyFromDockerConfig(t *testing.T) {
	f := testengine.Foundation(t)
	ctx := t.Context()
	const secret = "planted-s3cret-9f2c"
	authDir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	os.WriteFile(filepath.Join(authDir, "htpasswd"), []byte("releaser:"+string(hash)+"\n"), 0o644)
	image, err := hostimages.RegistryImage(ctx, testenv.Reporter(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testproc.Ports(t, 1)[0])
	in := registry.Instance{Name: "lhcbdirac-registry-auth-test", Addr: addr, Volume: "lhcbdirac-registry-auth-test", Ephemeral: true,
		Extra: []string{"-v", authDir + ":/auth:ro", "-e", "REGISTRY_AUTH=htpasswd", "-e", "REGISTRY_AUTH_HTPASSWD_REALM=test", "-e", "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd"}}
	_ = registry.Down(ctx, in, true)
	// (Not t.Context(): it is cancelled before the cleanups run, and the
	// registry would stay.)
	t.Cleanup(func() {
		if err := registry.Down(context.Background(), in, true); err != nil {
			t.Errorf("removing the test registry: %v", err)
		}
	})
	if err := registry.Start(ctx, testenv.Reporter(t), in, image); err != nil {
		t.Fatal(err)
	}

	ctr := image2(f.Client)
	repo := addr + "/lhcbdirac/auth-test"
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials
	_, err = push.ByDigest(ctx, ctr, "auth-test", repo, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "docker login") {
		t.Fatalf("push without credentials: %v", err)
	}

	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("releaser:" + secret))
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths": {"`+addr+`": {"auth": "`+auth+`"}}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", cfgDir)
	p, err := push.ByDigest(ctx, ctr, "auth-test", repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := version.Parse("v9.1")
	if err := push.MoveTags(ctx, []push.Pushed{p}, push.Tags(v, "")); err != nil {
		t.Fatal(err)
	}
	// The image's bytes never hold the credential.
	tarPath := filepath.Join(t.TempDir(), "img.tar")
	if _, err := ctr.AsTarball().Export(ctx, tarPath); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(tarPath)
	for _, s := range []string{secret, auth} {
		if bytes.Contains(b, []byte(s)) {
			t.Fatal("the credential is in the image")
		}
		if strings.Contains(fmt.Sprint(p, err), s) {
			t.Fatal("the credential is in the output")
		}
	}
}

func image2(c *dagger.Client) *dagger.Container {
	return c.Container().WithNewFile("/etc/motd", "auth test").WithEntrypoint([]string{"/bin/true"})
}

// TestIntegrationExportViaTheRegistryIsTheTarballsImage: the export through
// the project's registry (the engine publishes, the canonical form is read
// from there) gives the image the tarball route gives, to the digest, for a
// new image and for the same image with one more layer; and it pushes.
func TestIntegrationExportViaTheRegistryIsTheTarballsImage(t *testing.T) {
	f := testengine.Foundation(t)
	ctx := t.Context()
	run := fmt.Sprint(time.Now().UnixNano())
	repo := f.Registry + "/lhcbdirac-pipeline/export-via-test"
	staging := f.Registry + "/lhcbdirac-pipeline-staging/export-via-test"
	first := image(f.Client, "first "+run)
	for _, ctr := range []*dagger.Container{first, first.WithNewFile("/etc/one-line", "changed "+run)} {
		// Through the registry first: its new layers are rewritten from
		// there (the tarball's then come from the layer memo).
		via, err := push.ExportVia(ctx, ctr, "t", repo, staging)
		if err != nil {
			t.Fatal(err)
		}
		byTar, err := push.Export(ctx, ctr, "t", repo, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		byTar.Close()
		if via.Digest != byTar.Digest || via.Size != byTar.Size {
			t.Fatalf("through the registry %s (%d bytes), as a tarball %s (%d bytes)", via.Digest, via.Size, byTar.Digest, byTar.Size)
		}
		p, err := via.Push(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := tagDigest(t, p.Ref()); !ok || d != byTar.Digest {
			t.Fatalf("%s reads back as %q", p.Ref(), d)
		}
	}
	// A staging repository that is no repository is refused by name.
	if _, err := push.ExportVia(ctx, first, "t", repo, "127.0.0.1:5000/Not A Repo"); err == nil || !strings.Contains(err.Error(), "Not A Repo") {
		t.Fatalf("a bad staging repository: %v", err)
	}
}
