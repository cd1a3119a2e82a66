package pipeline

import (
	"testing"
)

// What a smoke test ran is the app as its task runs: two apps that differ
// only in the tag beside their image's digest ran the same test; another
// digest, another port, or an image without a digest did not.
func TestRunSHAIgnoresOnlyTheTagBesideADigest(t *testing.T) {
	app := func(image string, port int) []byte {
		return []byte(`{"id": "/prod/dm-filecatalog", "container": {"type": "DOCKER", "docker": {"image": "` + image + `"}},
  "portDefinitions": [{"port": 9197, "name": "dips"}], "env": {"PORT": "` + string(rune('0'+port)) + `"}}`)
	}
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	a := app("127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac:v12.0.21@"+d1, 1)
	b := app("127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac:v12.0.22-bench-7@"+d1, 1)
	if sha(a) == sha(b) {
		t.Fatal("the two apps' bytes differ; their sha256 must too")
	}
	if runSHA(a) != runSHA(b) {
		t.Error("apps differing only in the tag beside one digest run differently")
	}
	if want := sha(app("127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac@"+d1, 1)); runSHA(a) != want {
		t.Error("the app as it runs is not the app with its image named by digest alone")
	}
	for what, other := range map[string][]byte{
		"another digest": app("127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac:v12.0.21@"+d2, 1),
		"another port":   app("127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac:v12.0.21@"+d1, 2),
		"another repo":   app("127.0.0.1:5000/other/lhcbdirac:v12.0.21@"+d1, 1),
	} {
		if runSHA(other) == runSHA(a) {
			t.Errorf("%s: the same app as it runs", what)
		}
	}
	// Not pinned, or not an app: its own bytes, nothing shared.
	for _, raw := range [][]byte{app("127.0.0.1:5000/lhcbdirac-pipeline/lhcbdirac:v12.0.21", 1), []byte("{not json")} {
		if runSHA(raw) != sha(raw) {
			t.Errorf("%s: want its own sha256", raw)
		}
	}
}
