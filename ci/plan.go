// Package ci decides what a CI run does — the same decision locally, in
// GitLab CI and in GitHub Actions, whose files only call mage: which tag
// means a release, which a pre-release, which nothing; whether a run is a
// hotfix build; what is pushed and whether it is deployed. The CI
// definitions themselves are the YAML files beside this package.
package ci

import (
	"fmt"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/build/sources"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/settings"
	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/version"
)

// Kind is what a tag means.
type Kind string

const (
	Final Kind = "final"       // builds, tests, pushes the version tag, deploys
	Pre   Kind = "pre-release" // builds, tests, pushes the version tag and devel; no deploy
)

// Plan is what a run does.
type Plan struct {
	Version version.Version
	Kind    Kind
	Hotfix  []string // the overrides set, NAME=value
	Tags    []string // tags moved after every image passed
	Deploy  bool
	Why     string // why it deploys or not
}

// Decide turns a tag (or a manual run's version) and the settings into a
// plan. A tag that is not a release version is an error: CI must not build
// something nobody can name. The version is parsed here, once, and handed
// on typed.
func Decide(tag string, st settings.Settings) (Plan, error) {
	tag = strings.TrimPrefix(strings.TrimSpace(tag), "refs/tags/")
	if tag == "" {
		return Plan{}, fmt.Errorf("no tag: releases run on tags (CI_COMMIT_TAG in GitLab, the pushed tag in GitHub) or on a manual run's version")
	}
	v, err := version.Parse(tag)
	if err != nil {
		return Plan{}, fmt.Errorf("tag %q is not a release version, nothing is built: %w", tag, err)
	}
	p := Plan{Version: v, Kind: Final, Tags: []string{v.Raw}}
	if v.Pre {
		p.Kind, p.Tags = Pre, []string{v.Raw, "devel"}
	}
	for _, s := range []sources.Spec{st.Release.DIRAC, st.Release.LHCbDIRAC} {
		if s.Repo != "" {
			p.Hotfix = append(p.Hotfix, s.RepoVar+"="+redact.URL(s.Repo))
		}
		if s.Branch != "" {
			p.Hotfix = append(p.Hotfix, s.BranchVar+"="+s.Branch)
		}
		if err := sources.CheckOverride(s); err != nil {
			return p, fmt.Errorf("hotfix: %w", err)
		}
	}
	switch {
	case v.Pre:
		p.Why = "a pre-release is never deployed to production"
	case len(p.Hotfix) > 0 && !st.CI.HotfixDeploy:
		p.Why = "a hotfix build deploys only when LHCBDIRAC_HOTFIX_DEPLOY=1 is set on the manual run"
	case st.Marathon.URL == "":
		p.Why = "MARATHON_URL is not set: a dry run"
	default:
		p.Deploy, p.Why = true, "a final release"
	}
	return p, nil
}

// String is the plan in one line, for logs.
func (p Plan) String() string {
	s := fmt.Sprintf("%s %s: push %s; deploy: %v (%s)", p.Kind, p.Version.Raw, strings.Join(p.Tags, ", "), p.Deploy, p.Why)
	if len(p.Hotfix) > 0 {
		s += "; hotfix " + strings.Join(p.Hotfix, " ")
	}
	return s
}
