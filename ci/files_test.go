package ci

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

// ---- GitHub: actionlint ----

func TestGitHubWorkflowPassesActionlint(t *testing.T) {
	b, err := os.ReadFile("github-release.yml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(".github/workflows/release.yml", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("actionlint: %s", e)
	}
	// The linter does find mistakes (a test that cannot fail proves nothing).
	bad := bytes.Replace(b, []byte("runs-on: ubuntu-latest"), []byte("runs_on: ubuntu-latest"), 1)
	if errs, _ := l.Lint(".github/workflows/release.yml", bad, nil); len(errs) == 0 {
		t.Fatal("actionlint accepted an unknown key")
	}
}

// ---- GitLab: a structural check against the documented keywords ----

var (
	gitlabTop      = keys("default", "include", "stages", "variables", "workflow", "spec")
	gitlabDefault  = keys("after_script", "artifacts", "before_script", "cache", "hooks", "id_tokens", "image", "interruptible", "retry", "services", "tags", "timeout")
	gitlabJob      = keys("after_script", "allow_failure", "artifacts", "before_script", "cache", "coverage", "dast_configuration", "dependencies", "environment", "extends", "hooks", "id_tokens", "identity", "image", "inherit", "interruptible", "manual_confirmation", "needs", "pages", "parallel", "release", "resource_group", "retry", "rules", "run", "script", "secrets", "services", "stage", "tags", "timeout", "trigger", "variables", "when")
	gitlabRule     = keys("if", "changes", "exists", "allow_failure", "needs", "variables", "when", "interruptible")
	gitlabArtifact = keys("paths", "exclude", "expire_in", "expose_as", "name", "public", "access", "reports", "untracked", "when")
	gitlabWhen     = keys("on_success", "on_failure", "always", "never", "manual", "delayed")
	gitlabArtWhen  = keys("on_success", "on_failure", "always")
)

func keys(k ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range k {
		m[s] = true
	}
	return m
}

func loadGitLab(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkGitLab returns every structural problem in a GitLab CI file.
func checkGitLab(doc map[string]any) []string {
	var errs []string
	unknown := func(where string, m map[string]any, known map[string]bool) {
		for k := range m {
			if !known[k] {
				errs = append(errs, fmt.Sprintf("%s: unknown keyword %q", where, k))
			}
		}
	}
	stages, _ := doc["stages"].([]any)
	if d, ok := doc["default"].(map[string]any); ok {
		unknown("default", d, gitlabDefault)
	}
	jobs := 0
	for name, v := range doc {
		if gitlabTop[name] {
			continue
		}
		job, ok := v.(map[string]any)
		if !ok || strings.HasPrefix(name, ".") {
			if !ok {
				errs = append(errs, fmt.Sprintf("top level: unknown keyword %q (not a job)", name))
			}
			continue
		}
		jobs++
		unknown("job "+name, job, gitlabJob)
		if _, ok := job["script"]; !ok && job["trigger"] == nil && job["extends"] == nil {
			errs = append(errs, "job "+name+": no script")
		}
		if s, ok := job["stage"].(string); ok && !slices.Contains(stages, any(s)) {
			errs = append(errs, fmt.Sprintf("job %s: stage %q is not in stages", name, s))
		}
		if w, ok := job["when"].(string); ok && !gitlabWhen[w] {
			errs = append(errs, fmt.Sprintf("job %s: when: %q", name, w))
		}
		rules, _ := job["rules"].([]any)
		for i, r := range rules {
			rm, _ := r.(map[string]any)
			unknown(fmt.Sprintf("job %s rules[%d]", name, i), rm, gitlabRule)
			if w, ok := rm["when"].(string); ok && !gitlabWhen[w] {
				errs = append(errs, fmt.Sprintf("job %s rules[%d]: when: %q", name, i, w))
			}
		}
		if a, ok := job["artifacts"].(map[string]any); ok {
			unknown("job "+name+" artifacts", a, gitlabArtifact)
			if w, ok := a["when"].(string); ok && !gitlabArtWhen[w] {
				errs = append(errs, fmt.Sprintf("job %s artifacts: when: %q", name, w))
			}
		}
	}
	if jobs == 0 {
		errs = append(errs, "no jobs")
	}
	sort.Strings(errs)
	return errs
}

func TestGitLabCIHasOnlyKnownKeywords(t *testing.T) {
	b, err := os.ReadFile("gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range checkGitLab(loadGitLab(t, b)) {
		t.Error(e)
	}
	for _, bad := range []struct{ from, to, want string }{
		{"  resource_group: production", "  resource_grup: production", `unknown keyword "resource_grup"`},
		{"      when: manual", "      when: sometimes", `when: "sometimes"`},
		{"  stage: release\n  rules:\n    - if: $CI_COMMIT_TAG", "  stage: deploy\n  rules:\n    - if: $CI_COMMIT_TAG", `stage "deploy" is not in stages`},
		{"    when: always\n    expire_in: 1 year\n    expose_as: \"release report\"", "    when: always\n    expire: 1 year\n    expose_as: \"release report\"", `unknown keyword "expire"`},
	} {
		mutated := strings.Replace(string(b), bad.from, bad.to, 1)
		if mutated == string(b) {
			t.Fatalf("mutation %q did not apply", bad.from)
		}
		if errs := checkGitLab(loadGitLab(t, []byte(mutated))); !strings.Contains(strings.Join(errs, "\n"), bad.want) {
			t.Errorf("the check missed %s: %v", bad.want, errs)
		}
	}
}

// ---- dry runs: the CI scripts, executed, reach mage release ----

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runScript runs shell lines as the CI system would (bash, -e), from the
// repository root, with LHCBDIRAC_CI_DRY_RUN=1 so ci:release prints the
// mage call instead of making it.
func runScript(t *testing.T, lines []string, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", strings.Join(lines, "\n"))
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "LHCBDIRAC_CI_DRY_RUN=1", "MARATHON_URL=", "REGISTRY=", "REGISTRY_USER=", "REGISTRY_PASSWORD=", "CI_REGISTRY=", "CI_REGISTRY_USER=", "CI_REGISTRY_PASSWORD=")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestGitLabReleaseJobDryRunReachesMageRelease(t *testing.T) {
	b, _ := os.ReadFile("gitlab-ci.yml")
	doc := loadGitLab(t, b)
	job := doc["release"].(map[string]any)
	rule := job["rules"].([]any)[0].(map[string]any)
	if rule["if"] != "$CI_COMMIT_TAG" {
		t.Fatalf("the release job must run on tags: %v", rule)
	}
	lines := append(strs(doc["default"].(map[string]any)["before_script"]), strs(job["script"])...)
	vars := map[string]string{"CI_PROJECT_DIR": repoRoot(t), "CI_REGISTRY_IMAGE": "registry.example/lhcb/pipeline"}
	for k, v := range doc["variables"].(map[string]any) {
		vars[k] = os.Expand(v.(string), func(n string) string { return vars[n] })
	}
	for _, tc := range []struct{ tag, want string }{
		{"v9.1", "dry run: would run: mage release v9.1 (deploy: false)"},
		{"v9.2-pre1", "ci: pre-release v9.2-pre1: push v9.2-pre1, devel"},
	} {
		env := map[string]string{"CI_COMMIT_TAG": tc.tag}
		for k, v := range vars {
			env[k] = v
		}
		out, err := runScript(t, lines, env)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Fatalf("%s: %v\n%s", tc.tag, err, out)
		}
		t.Logf("%s:\n%s", tc.tag, out)
	}
	out, err := runScript(t, strs(job["script"]), map[string]string{"CI_COMMIT_TAG": "nightly"})
	if err == nil || !strings.Contains(out, `tag "nightly" is not a release version`) {
		t.Fatalf("a malformed tag must fail the job: %v\n%s", err, out)
	}
	// The manual hotfix job passes the overrides through the environment.
	hot := doc["hotfix"].(map[string]any)
	out, err = runScript(t, strs(hot["script"]), map[string]string{"HOTFIX_VERSION": "v9.1.1", "DIRAC_REPO": "https://git.example/DIRAC.git", "DIRAC_BRANCH": "fix-1"})
	if err != nil || !strings.Contains(out, "hotfix DIRAC_REPO=https://git.example/DIRAC.git DIRAC_BRANCH=fix-1") || !strings.Contains(out, "would run: mage release v9.1.1 (deploy: false)") {
		t.Fatalf("hotfix: %v\n%s", err, out)
	}
}

// expr evaluates the GitHub expressions the workflow uses: dotted names,
// 'literals', && and || with JavaScript-like results.
var exprRE = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

func expr(s string, ctx map[string]string) string {
	return exprRE.ReplaceAllStringFunc(s, func(m string) string {
		e := exprRE.FindStringSubmatch(m)[1]
		for _, or := range strings.Split(e, "||") {
			val := ""
			for i, and := range strings.Split(or, "&&") {
				and = strings.TrimSpace(and)
				if strings.HasPrefix(and, "'") {
					val = strings.Trim(and, "'")
				} else {
					val = ctx[and]
				}
				if val == "" || val == "false" {
					val = ""
					break
				}
				_ = i
			}
			if val != "" {
				return val
			}
		}
		return ""
	})
}

func TestGitHubReleaseJobDryRunReachesMageRelease(t *testing.T) {
	b, _ := os.ReadFile("github-release.yml")
	var wf struct {
		On   map[string]any `yaml:"on"`
		Jobs map[string]struct {
			If    string `yaml:"if"`
			Steps []struct {
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				Env  map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	if tags := fmt.Sprint(wf.On["push"]); !strings.Contains(tags, "v*") {
		t.Fatalf("the workflow must run on pushed tags: %s", tags)
	}
	run := func(ctx map[string]string) (string, error) {
		var out strings.Builder
		for _, st := range wf.Jobs["release"].Steps {
			if st.Run == "" || !strings.Contains(st.Run, "mage.go") {
				continue // actions (checkout, setup-go, upload-artifact) and the publishing of the notes (gh) act on GitHub
			}
			env := map[string]string{}
			for k, v := range st.Env {
				env[k] = expr(v, ctx)
			}
			o, err := runScript(t, []string{expr(st.Run, ctx)}, env)
			out.WriteString(o)
			if err != nil {
				return out.String(), err
			}
		}
		return out.String(), nil
	}
	tmp := t.TempDir()
	out, err := run(map[string]string{"github.event_name": "push", "github.ref_name": "v9.1", "runner.temp": tmp})
	if err != nil || !strings.Contains(out, "dry run: would run: mage release v9.1 (deploy: false)") {
		t.Fatalf("tag push: %v\n%s", err, out)
	}
	out, err = run(map[string]string{"github.event_name": "push", "github.ref_name": "v9.2.0-pre2", "runner.temp": tmp})
	if err != nil || !strings.Contains(out, "pre-release v9.2.0-pre2: push v9.2.0-pre2, devel; deploy: false") {
		t.Fatalf("pre tag: %v\n%s", err, out)
	}
	out, err = run(map[string]string{"github.event_name": "workflow_dispatch", "github.ref_name": "main", "inputs.version": "v9.1.1",
		"inputs.lhcb_dirac_repo": "https://git.example/LHCbDIRAC.git", "inputs.lhcb_dirac_branch": "hotfix", "inputs.deploy": "true",
		"vars.MARATHON_URL": "http://marathon.example:8080", "runner.temp": tmp})
	if err != nil || !strings.Contains(out, "would run: mage release v9.1.1 (deploy: true)") || !strings.Contains(out, "LHCB_DIRAC_BRANCH=hotfix") {
		t.Fatalf("manual hotfix: %v\n%s", err, out)
	}
	out, err = run(map[string]string{"github.event_name": "push", "github.ref_name": "v9", "runner.temp": tmp})
	if err == nil || !strings.Contains(out, `tag "v9" is not a release version`) {
		t.Fatalf("a malformed tag must fail: %v\n%s", err, out)
	}
}
