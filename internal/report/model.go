// Package report writes what a release manager reads instead of a log:
// dist/<version>/report.html — one self-contained page (inline CSS and SVG,
// no script, nothing loaded from anywhere) — and dist/<version>/release-notes.md,
// the same essentials for a GitLab or GitHub release description.
//
// It takes a plain typed input, Release, filled by whoever ran the release
// (or read it back from the registry); it imports nothing of the pipeline.
// Every text of the input is distrusted: URLs lose their userinfo, secrets
// found in hotfix URLs are blanked everywhere, control characters are shown
// as visible symbols (see Visible), and html/template escapes the rest.
package report

import "time"

// Outcome is what became of a stage, a step of the timeline or a check.
// The zero value is NotReached: nothing ran.
type Outcome string

const (
	NotReached Outcome = ""
	Passed     Outcome = "passed"
	Failed     Outcome = "failed"
	Cached     Outcome = "cached"  // answered from the build cache
	Skipped    Outcome = "skipped" // not run on purpose (Reason says why)
	// CannotRunHere is a smoke check that this machine cannot run (Reason
	// says why); it is neither a pass nor a failure.
	CannotRunHere Outcome = "cannot-run-here"
)

// Release is everything the report shows. Sections left empty are shown as
// "not reached" when the release failed, else as "not recorded" (a report
// made from the registry has no timeline or smoke tests).
type Release struct {
	Version string // the release, e.g. v12.0.21
	// LHCbDIRAC and DIRAC are the versions installed in the image.
	LHCbDIRAC, DIRAC string
	LockDigest       string // digest of the lock the image was installed from
	PipelineCommit   string // the commit of this pipeline that made the release
	Started          time.Time
	Finished         time.Time
	Hotfixes         []Hotfix
	// Flags say where something stands in for the real thing (FIXTURE,
	// STAND-IN); the report puts them in its header, not in small print.
	Flags    []Flag
	Result   Result
	Stages   []Stage // in the release's order, including those not reached
	Steps    []Step  // the timeline
	Images   []Image
	Lock     LockInput
	Smoke    []Service
	Evidence []Evidence
	Deploy   Deploy
}

// Hotfix is a component built from a repository and branch instead of its
// release. The repository is shown without credentials whatever it holds.
type Hotfix struct {
	Component  string // DIRAC or LHCbDIRAC
	Repository string `report:"url"`
	Branch     string
	Commit     string
}

// FlagName is a mark of something that is not the real thing.
type FlagName string

const (
	FIXTURE FlagName = "FIXTURE"  // a test double in place of LHCbDIRAC/DIRAC
	STANDIN FlagName = "STAND-IN" // a stand-in for a system that cannot run here
)

// Flag is a FIXTURE or STAND-IN mark and what it stands for.
type Flag struct {
	Name      FlagName
	StandsFor string
}

// Result is the release's verdict.
type Result struct {
	Outcome Outcome // Passed or Failed; NotReached when no run is recorded
	Stage   string  // the stage that failed
	Error   string  `report:"multiline"`
}

// Stage is one stage of the release (inputs, build, smoke, …).
type Stage struct {
	Name    string
	Outcome Outcome
	Reason  string
}

// Step is one bar of the timeline.
type Step struct {
	Name, Stage string
	Start, End  time.Time
	Outcome     Outcome // Passed, Failed, Cached or Skipped
	Reason      string
}

// Image is one pushed (or built) image.
type Image struct {
	Name string
	Ref  string // by digest: registry/name@sha256:…
	// Compressed is the sum of the layers as pushed; Uncompressed their
	// size unpacked.
	Compressed, Uncompressed int64
	// Layers are the image's layers, all of them: the report shows the
	// largest and compares their digests with the previous image's.
	Layers   []Layer
	Previous *PreviousImage // nil: no previous release to compare with
}

// Layer is one layer of an image.
type Layer struct {
	Digest    string
	Size      int64  // compressed
	CreatedBy string // the history entry that made it, when known
}

// PreviousImage is the same image in the previous release.
type PreviousImage struct {
	Release                  string
	Ref                      string
	Compressed, Uncompressed int64
	Layers                   []string // layer digests; nil when unknown
}

// LockInput is what the lock diff is computed from.
type LockInput struct {
	Current         []Distribution
	PreviousRelease string // the release compared with; "" when there is none
	Previous        []Distribution
	// PreviousMissing says why there is no previous lock (first release,
	// its lock could not be read, …).
	PreviousMissing string
}

// Distribution is one entry of a lock.
type Distribution struct {
	Name, Version string
	Hashes        []string
}

// Service is the smoke test of one service.
type Service struct {
	Name   string // System/Service
	Checks []Check
	Log    []string // its last lines, oldest first
}

// Check is one check of a smoke test (the health check, the ping, …).
type Check struct {
	Name     string
	Outcome  Outcome // Passed, Failed or CannotRunHere
	Reason   string
	Duration time.Duration
}

// Evidence is one piece of evidence attached to an image's digest.
type Evidence struct {
	Image    string
	Kind     string // signature, SBOM, provenance, lock, …
	Verified bool
	Reason   string
}

// Action is what deploying does to an app.
type Action string

const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
)

// DeployOutcome is what became of the deploy (or of one app).
type DeployOutcome string

const (
	NotDeployed  DeployOutcome = "" // not reached, or a dry run
	Deployed     DeployOutcome = "deployed"
	RolledBack   DeployOutcome = "rolled-back"
	DeployFailed DeployOutcome = "failed"
	DeploySkip   DeployOutcome = "skipped" // e.g. a -pre version is never deployed
)

// Deploy is the plan against what Marathon runs, and what happened.
type Deploy struct {
	Target  string `report:"url"` // the Marathon URL
	DryRun  bool
	Apps    []AppPlan
	Outcome DeployOutcome
	Message string `report:"multiline"`
}

// AppPlan is the plan for one app and, once deployed, its outcome.
type AppPlan struct {
	ID      string
	Action  Action
	Changes []FieldChange // for Update: field by field
	Outcome DeployOutcome
	Message string
}

// FieldChange is one field of an app that the deploy changes.
type FieldChange struct {
	Path     string // e.g. container.docker.image, env.DIRAC_SETUP
	Old, New string
}
