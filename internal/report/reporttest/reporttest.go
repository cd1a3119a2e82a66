// Package reporttest holds sample releases for the report's tests and
// benchmarks: a passed FIXTURE release, a release that failed at smoke
// (with hostile names and log lines), and generated releases of any size.
// They are invented figures shaped like the real ones, not a real release.
package reporttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/report"
)

// T0 is when every sample release starts.
var T0 = time.Date(2026, 3, 2, 9, 14, 5, 0, time.UTC)

// Hostile is a text that must be shown, never interpreted: markup, a
// closing script tag, entities, quotes, NUL, an ANSI colour code and a
// carriage return.
const Hostile = "Evil/<script>alert(1)</script>&amp; \"dq\" 'sq' \x00nul \x1b[31mred\x1b[0m\rCR </script><img src=x onerror=alert(2)>"

// Token is the credential inside the failed release's hotfix URL: it must
// appear nowhere in what the report writes.
const Token = "s3cr3t-T0KEN-4242"

// Digest is a stable fake sha256 digest of s.
func Digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

func at(sec float64) time.Time { return T0.Add(time.Duration(sec * float64(time.Second))) }

var stages = []string{"inputs", "build", "smoke", "push", "render", "deploy"}

// Services are the certification services of the default services file.
var Services = []string{
	"DataManagement/DataIntegrity", "DataManagement/DataUsage", "DataManagement/StorageUsage",
	"DataManagement/FileCatalog", "RequestManagement/ReqManager", "RequestManagement/ReqProxy",
}

func image(name string, compressed, uncompressed int64, layers []report.Layer, prevRelease string, prevCompressed, prevUncompressed int64, keep int) report.Image {
	im := report.Image{Name: name, Ref: "registry.example.org/lhcbdirac-pipeline/" + name + "@" + Digest(name+"12.0.21"),
		Compressed: compressed, Uncompressed: uncompressed, Layers: layers}
	if prevRelease != "" {
		prev := &report.PreviousImage{Release: prevRelease, Ref: "registry.example.org/lhcbdirac-pipeline/" + name + "@" + Digest(name+prevRelease),
			Compressed: prevCompressed, Uncompressed: prevUncompressed}
		for i, l := range layers {
			if i < keep {
				prev.Layers = append(prev.Layers, l.Digest)
			}
		}
		prev.Layers = append(prev.Layers, Digest(name+"old-layer"))
		im.Previous = prev
	}
	return im
}

func images(prev string) []report.Image {
	l := func(s string, size int64, by string) report.Layer {
		return report.Layer{Digest: Digest(s), Size: size, CreatedBy: by}
	}
	return []report.Image{
		image("lhcbdirac", 412_345_678, 1_288_000_000, []report.Layer{
			l("debian-base", 29_123_456, "debootstrap bookworm (offline base)"),
			l("python", 48_765_432, "install python3.11, CA bundle"),
			l("runtime", 301_234_567, "uv pip install --require-hashes -r lhcbdirac.lock (DIRAC first)"),
			l("lhcbdirac", 31_002_223, "uv pip install --no-deps LHCbDIRAC==12.0.21"),
			l("entrypoint", 2_100_000, "COPY entrypoint dirac-self-ping dirac-discover"),
			l("cfg", 120_000, "COPY etc/dirac defaults"),
		}, prev, 398_001_234, 1_251_000_000, 3),
		image("pinger", 9_876_543, 23_456_789, []report.Layer{
			l("static", 9_800_000, "COPY pinger (go build, static)"),
			l("ca", 76_543, "COPY ca-certificates"),
		}, prev, 9_870_001, 23_400_000, 2),
		image("mesos-slave", 187_654_321, 544_000_000, []report.Layer{
			l("mesos-base", 28_999_000, "debootstrap bookworm"),
			l("docker-cli", 58_655_321, "apt-get install docker.io"),
			l("agent", 100_000_000, "COPY STAND-IN agent, init, collector"),
		}, prev, 187_654_321, 544_000_000, 3),
		image("registrator", 12_345_678, 30_111_222, []report.Layer{
			l("reg", 12_345_678, "COPY registrator (go build, static)"),
		}, "", 0, 0, 0),
	}
}

func lockPair() (cur, prev []report.Distribution) {
	h := func(s string) []string { return []string{Digest(s)} }
	common := []struct{ name, version string }{
		{"certifi", "2026.1.4"}, {"cffi", "1.17.1"}, {"cryptography", "44.0.2"}, {"diraccfg", "1.0.1"},
		{"M2Crypto", "0.44.0"}, {"pyasn1", "0.6.1"}, {"PyMySQL", "1.1.1"}, {"python-dateutil", "2.9.0.post0"},
		{"PyYAML", "6.0.2"}, {"sqlalchemy", "2.0.38"}, {"six", "1.17.0"}, {"pytz", "2025.1"}, {"psutil", "7.0.0"},
		{"pydantic-core", "2.27.2"}, {"typing_extensions", "4.12.2"}, {"zipp", "3.21.0"},
	}
	for _, c := range common {
		cur = append(cur, report.Distribution{Name: c.name, Version: c.version, Hashes: h(c.name + c.version)})
		prev = append(prev, report.Distribution{Name: c.name, Version: c.version, Hashes: h(c.name + c.version)})
	}
	cur = append(cur,
		report.Distribution{Name: "LHCbDIRAC", Version: "12.0.21", Hashes: h("lhcbdirac12.0.21")},
		report.Distribution{Name: "DIRAC", Version: "9.0.12", Hashes: h("dirac9.0.12")},
		report.Distribution{Name: "requests", Version: "2.32.3", Hashes: h("requests2.32.3")},
		report.Distribution{Name: "pydantic", Version: "2.10.6", Hashes: h("pydantic2.10.6")},
		report.Distribution{Name: "urllib3", Version: "2.3.0", Hashes: h("urllib3-2.3.0")},
		report.Distribution{Name: "idna", Version: "3.9", Hashes: h("idna3.9")},
		report.Distribution{Name: "opensearch-py", Version: "2.8.0", Hashes: h("opensearch-py2.8.0")},
		report.Distribution{Name: "rucio-clients", Version: "37.1.0", Hashes: h("rucio37.1.0")},
		report.Distribution{Name: "packaging", Version: "24.2", Hashes: h("packaging-rebuilt")},
	)
	prev = append(prev,
		report.Distribution{Name: "LHCbDIRAC", Version: "12.0.20", Hashes: h("lhcbdirac12.0.20")},
		report.Distribution{Name: "DIRAC", Version: "9.0.11", Hashes: h("dirac9.0.11")},
		report.Distribution{Name: "requests", Version: "2.32.3", Hashes: h("requests2.32.3")},
		report.Distribution{Name: "pydantic", Version: "2.10.4", Hashes: h("pydantic2.10.4")},
		report.Distribution{Name: "urllib3", Version: "1.26.20", Hashes: h("urllib3-1.26.20")},
		report.Distribution{Name: "idna", Version: "3.10", Hashes: h("idna3.10")},
		report.Distribution{Name: "elasticsearch", Version: "7.17.12", Hashes: h("es7.17.12")},
		report.Distribution{Name: "packaging", Version: "24.2", Hashes: h("packaging24.2")},
	)
	return cur, prev
}

// LockFigures are the sample lock diff's counts, as a person counts them
// from lockPair: added opensearch-py and rucio-clients; removed
// elasticsearch; upgraded LHCbDIRAC, DIRAC, pydantic, urllib3 (major);
// downgraded idna (3.10 → 3.9, which a string order gets wrong); packaging
// republished under the same version.
var LockFigures = struct{ Added, Removed, Upgraded, Downgraded, Refiled, Unchanged, Total int }{2, 1, 4, 1, 1, 17, 25}

func steps(failAt string) []report.Step {
	var s []report.Step
	add := func(name, stage string, from, to float64, o report.Outcome, reason string) {
		s = append(s, report.Step{Name: name, Stage: stage, Start: at(from), End: at(to), Outcome: o, Reason: reason})
	}
	add("version and command line", "inputs", 0, 0.1, report.Passed, "")
	add("services file", "inputs", 0.1, 0.3, report.Passed, "")
	add("LHCbDIRAC lock (remembered)", "inputs", 0.3, 0.5, report.Cached, "resolved before for 12.0.21")
	add("hotfix DIRAC: git ls-remote", "inputs", 0.3, 1.9, report.Passed, "")
	add("bases (debootstrap, offline)", "inputs", 0.5, 14, report.Cached, "")
	add("Go modules", "inputs", 0.5, 6.5, report.Passed, "")
	add("build lhcbdirac", "build", 14, 96, report.Passed, "")
	add("build pinger", "build", 14, 31, report.Cached, "")
	add("build mesos-slave", "build", 14, 58, report.Passed, "")
	add("build registrator", "build", 14, 27, report.Cached, "")
	add("MariaDB (Debian mariadb-server)", "smoke", 96, 104, report.Passed, "")
	for i, svc := range Services {
		o := report.Passed
		if failAt == "smoke" && i == 3 {
			o = report.Failed
		}
		add("smoke "+svc, "smoke", 104+float64(i%3)*2, 121+float64(i)*3, o, "")
	}
	add("mesos-slave: ENVIRONMENT presets and watchdog", "smoke", 104, 126, report.Passed, "")
	if failAt == "smoke" {
		return s
	}
	for i, n := range []string{"lhcbdirac", "pinger", "mesos-slave", "registrator"} {
		add("push "+n+" by digest", "push", 140+float64(i)*0.4, 142+float64(i)*3, report.Passed, "")
	}
	add("move tags v12.0.21", "push", 152, 153, report.Passed, "")
	add("render 7 Marathon apps", "render", 153, 153.6, report.Passed, "")
	add("plan against Marathon", "deploy", 153.6, 154.4, report.Passed, "")
	add("deploy and await health", "deploy", 154.4, 181, report.Passed, "")
	add("registrator app (discovery off)", "deploy", 154.4, 154.4, report.Skipped, "discovery is not configured")
	return s
}

func smoke(failed bool) []report.Service {
	var out []report.Service
	for i, svc := range Services {
		log := []string{
			fmt.Sprintf("2026-03-02 09:15:%02d UTC Framework/%s NOTICE: Service started", 44+i, svc),
			fmt.Sprintf("2026-03-02 09:15:%02d UTC Framework/%s INFO: Listening at dips://localhost:%d/%s", 44+i, svc, 9150+i, svc),
			"2026-03-02 09:15:50 UTC Framework INFO: ping from 127.0.0.1 (pinger)",
		}
		checks := []report.Check{
			{Name: "health check", Outcome: report.Passed, Duration: time.Duration(900+170*i) * time.Millisecond},
			{Name: "DIPS ping", Outcome: report.Passed, Duration: time.Duration(60+11*i) * time.Millisecond},
		}
		if failed && i == 3 {
			checks[0] = report.Check{Name: "health check", Outcome: report.Failed, Duration: 20 * time.Second, Reason: "dirac-self-ping exited 1 after 5 tries (timeoutSeconds 20)"}
			checks[1] = report.Check{Name: "DIPS ping", Outcome: report.Failed, Duration: 0, Reason: "not tried: the health check failed"}
			log = []string{
				"2026-03-02 09:15:47 UTC DataManagement/FileCatalog NOTICE: Service starting",
				"\x1b[31mERROR\x1b[0m FileCatalogDB: (1045, \"Access denied for user 'Dirac'@'10.0.0.3' (using password: YES)\")\r",
				"Traceback (most recent call last): <module> & </script> \x00",
				"  File \"/opt/dirac/lib/python3.11/site-packages/DIRAC/Core/DISET/private/Service.py\", line 137, in initialize",
				"DIRAC.Core.Utilities.ReturnValues.SErrorException: <ERROR> Can't connect to DB",
			}
		}
		out = append(out, report.Service{Name: svc, Checks: checks, Log: log})
	}
	if failed {
		out = append(out, report.Service{Name: Hostile,
			Checks: []report.Check{{Name: "health <check> & \"ping\"", Outcome: report.CannotRunHere, Reason: "needs a <GPU> & a \x1b[1mTape\x1b[0m system", Duration: 0}},
			Log:    []string{Hostile, "second line\ttabbed"}})
	}
	return out
}

// Passed is a FIXTURE release that passed every stage and deployed to the
// Marathon stand-in.
func Passed() report.Release {
	cur, prev := lockPair()
	r := report.Release{
		Version: "v12.0.21", LHCbDIRAC: "12.0.21", DIRAC: "9.0.12",
		LockDigest:     Digest("lock-12.0.21"),
		PipelineCommit: "9f3c2a1b7e6d5c4b3a29180706f5e4d3c2b1a098",
		Started:        T0, Finished: at(181.2),
		Flags: []report.Flag{
			{Name: report.FIXTURE, StandsFor: "LHCbDIRAC and DIRAC are the FIXTURE test double (LHCBDIRAC_SOURCES=fixture), not the releases from the index."},
			{Name: report.STANDIN, StandsFor: "Marathon is the marathontest stand-in; the mesos-slave image runs the STAND-IN agent."},
		},
		Hotfixes: []report.Hotfix{{Component: "DIRAC", Repository: "https://git.example.org/lhcb/DIRAC.git", Branch: "rel-v9r0", Commit: "0c1d2e3f4a5b6c7d8e9f00112233445566778899"}},
		Result:   report.Result{Outcome: report.Passed},
		Steps:    steps(""),
		Images:   images("v12.0.20"),
		Lock:     report.LockInput{Current: cur, Previous: prev, PreviousRelease: "v12.0.20"},
		Smoke:    smoke(false),
		Deploy: report.Deploy{Target: "http://127.0.0.1:18080", Outcome: report.Deployed, Message: "7 apps healthy after 26.6 s",
			Apps: []report.AppPlan{
				{ID: "/lhcbdirac/dataintegrity", Action: report.Update, Outcome: report.Deployed, Changes: []report.FieldChange{
					{Path: "container.docker.image", Old: "registry.example.org/lhcbdirac-pipeline/lhcbdirac@" + Digest("lhcbdiracv12.0.20")[:19], New: "registry.example.org/lhcbdirac-pipeline/lhcbdirac@" + Digest("lhcbdirac12.0.21")[:19]},
					{Path: "labels.LHCBDIRAC_VERSION", Old: "v12.0.20", New: "v12.0.21"}}},
				{ID: "/lhcbdirac/filecatalog", Action: report.Update, Outcome: report.Deployed, Changes: []report.FieldChange{
					{Path: "container.docker.image", Old: "…@" + Digest("lhcbdiracv12.0.20")[:19], New: "…@" + Digest("lhcbdirac12.0.21")[:19]},
					{Path: "instances", Old: "1", New: "2"},
					{Path: "env.DIRAC_FC_MANAGERS", Old: "", New: "DirectoryLevelTree,UserAndGroupManagerDB"}}},
				{ID: "/lhcbdirac/reqproxy", Action: report.Create, Outcome: report.Deployed},
				{ID: "/lhcbdirac/datausage", Action: report.Unchanged},
				{ID: "/lhcbdirac/storageusage", Action: report.Unchanged},
				{ID: "/lhcbdirac/reqmanager", Action: report.Unchanged},
				{ID: "/lhcbdirac/registrator", Action: report.Unchanged},
			}},
	}
	for _, s := range stages {
		r.Stages = append(r.Stages, report.Stage{Name: s, Outcome: report.Passed})
	}
	for _, im := range r.Images {
		r.Evidence = append(r.Evidence,
			report.Evidence{Image: im.Name, Kind: "signature (cosign)", Verified: true, Reason: "signed by the release key"},
			report.Evidence{Image: im.Name, Kind: "SBOM (SPDX 2.3)", Verified: im.Name != "registrator", Reason: map[bool]string{true: "attached to the digest", false: "no SBOM attached"}[im.Name != "registrator"]})
	}
	return r
}

// Failed is a release that failed at smoke: FileCatalog's health check
// failed; push, render and deploy were not reached. Its DIRAC hotfix URL
// holds a credential (Token), also quoted in a step's reason; a service
// name and log lines are hostile.
func Failed() report.Release {
	cur, prev := lockPair()
	r := report.Release{
		Version: "v12.0.21", LHCbDIRAC: "12.0.21", DIRAC: "9.0.12",
		LockDigest:     Digest("lock-12.0.21"),
		PipelineCommit: "9f3c2a1b7e6d5c4b3a29180706f5e4d3c2b1a098",
		Started:        T0, Finished: at(137.4),
		Hotfixes: []report.Hotfix{{Component: "DIRAC", Repository: "https://robot:" + Token + "@git.example.org/lhcb/DIRAC.git", Branch: "rel-v9r0-hotfix", Commit: "0c1d2e3f4a5b6c7d8e9f00112233445566778899"}},
		Result: report.Result{Outcome: report.Failed, Stage: "smoke",
			Error: "smoke: DataManagement/FileCatalog did not pass its smoke test: health check: dirac-self-ping exited 1 after 5 tries\n(the last lines of its log are in the smoke section)"},
		Steps:  steps("smoke"),
		Images: images("v12.0.20"),
		Lock:   report.LockInput{Current: cur, Previous: prev, PreviousRelease: "v12.0.20"},
		Smoke:  smoke(true),
	}
	r.Steps[3].Reason = "git ls-remote https://robot:" + Token + "@git.example.org/lhcb/DIRAC.git rel-v9r0-hotfix; token " + Token
	for _, s := range stages {
		o := report.NotReached
		switch s {
		case "inputs", "build":
			o = report.Passed
		case "smoke":
			o = report.Failed
		}
		r.Stages = append(r.Stages, report.Stage{Name: s, Outcome: o})
	}
	return r
}

// Generated is a release of the given size, deterministic: services with
// two checks and 20 log lines each, a lock of dists distributions against
// a previous one that differs in about one in six, and about steps steps
// (a tenth of them cached, some running concurrently).
func Generated(services, dists, steps int) report.Release {
	rnd := rand.New(rand.NewPCG(24, 2026))
	r := Passed()
	r.Smoke = nil
	for i := range services {
		name := fmt.Sprintf("System%02d/Service%03d", i%40, i)
		var log []string
		for j := range 20 {
			log = append(log, fmt.Sprintf("2026-03-02 09:%02d:%02d UTC %s INFO: request %d handled from 10.%d.%d.%d in %d ms", 15+j/60, j%60, name, rnd.IntN(100000), rnd.IntN(255), rnd.IntN(255), rnd.IntN(255), rnd.IntN(900)))
		}
		o := report.Passed
		if i%97 == 13 {
			o = report.Failed
		}
		r.Smoke = append(r.Smoke, report.Service{Name: name, Log: log, Checks: []report.Check{
			{Name: "health check", Outcome: o, Duration: time.Duration(500+rnd.IntN(4000)) * time.Millisecond},
			{Name: "DIPS ping", Outcome: report.Passed, Duration: time.Duration(20+rnd.IntN(200)) * time.Millisecond},
		}})
	}
	var cur, prev []report.Distribution
	cur = append(cur, report.Distribution{Name: "LHCbDIRAC", Version: "12.0.21", Hashes: []string{Digest("l21")}},
		report.Distribution{Name: "DIRAC", Version: "9.0.12", Hashes: []string{Digest("d12")}})
	prev = append(prev, report.Distribution{Name: "LHCbDIRAC", Version: "12.0.20", Hashes: []string{Digest("l20")}},
		report.Distribution{Name: "DIRAC", Version: "9.0.11", Hashes: []string{Digest("d11")}})
	for i := range dists - 2 {
		name := fmt.Sprintf("dist-%03d", i)
		v := fmt.Sprintf("%d.%d.%d", 1+i%7, i%13, i%5)
		d := report.Distribution{Name: name, Version: v, Hashes: []string{Digest(name + v), Digest(name + v + "sdist")}}
		cur = append(cur, d)
		switch i % 6 {
		case 1:
			pv := fmt.Sprintf("%d.%d.%d", 1+i%7, i%13, i%5+1) // newer before: a downgrade now
			if i%12 == 1 {
				pv = fmt.Sprintf("%d.%d.%d", i%7, i%13, i%5) // older: an upgrade
			}
			prev = append(prev, report.Distribution{Name: name, Version: pv, Hashes: []string{Digest(name + pv)}})
		case 3:
			// added in this release
		default:
			prev = append(prev, d)
		}
		if i%50 == 7 {
			prev = append(prev, report.Distribution{Name: fmt.Sprintf("gone-%03d", i), Version: "0.1"})
		}
	}
	r.Lock = report.LockInput{Current: cur, Previous: prev, PreviousRelease: "v12.0.20"}
	r.Steps = nil
	t := 0.0
	for i := range steps {
		stage := []string{"inputs", "build", "smoke", "push", "render", "deploy"}[min(i*6/steps, 5)]
		d := 0.5 + rnd.Float64()*30
		o := report.Passed
		if i%10 == 3 {
			o, d = report.Cached, 0.2
		}
		r.Steps = append(r.Steps, report.Step{Name: fmt.Sprintf("%s step %02d", stage, i), Stage: stage, Start: at(t), End: at(t + d), Outcome: o})
		if i%3 == 2 { // every third step waits; the others run alongside
			t += d
		}
	}
	r.Finished = at(t + 31)
	var apps []report.AppPlan
	for i := range services {
		a := report.AppPlan{ID: fmt.Sprintf("/lhcbdirac/service%03d", i), Action: report.Unchanged}
		if i%10 == 0 {
			a.Action, a.Outcome = report.Update, report.Deployed
			a.Changes = []report.FieldChange{{Path: "container.docker.image", Old: "…@" + Digest(fmt.Sprint(i))[:19], New: "…@" + Digest(fmt.Sprint(i + 1))[:19]}}
		}
		apps = append(apps, a)
	}
	r.Deploy.Apps = apps
	return r
}
