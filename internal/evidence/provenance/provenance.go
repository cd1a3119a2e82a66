// Package provenance makes the SLSA v1 provenance predicate
// (https://slsa.dev/provenance/v1) of an image the pipeline built, from a
// typed Input, with the in-toto attestation Go bindings; and reads it back
// into a typed Predicate for verification.
//
// Credentials never enter it: every URL (hotfix repositories, dependency
// locations) loses its userinfo (internal/redact) before it is written.
package provenance

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/redact"
)

// PredicateType is SLSA provenance v1's.
const PredicateType = "https://slsa.dev/provenance/v1"

// Pipeline is this pipeline's URI; builder ids are Pipeline@<commit>.
const Pipeline = "https://github.com/lhcbdirac/lhcbdirac-pipeline"

// BuildType says how to read externalParameters: an image built by the
// pipeline's Dagger recipe for one release version.
const BuildType = Pipeline + "/buildtypes/image/v1"

// BuilderID is the builder id of the pipeline at commit.
func BuilderID(commit string) string { return Pipeline + "@" + commit }

// Input is what the release knows about one image's build.
type Input struct {
	Commit       string            // the pipeline's own commit (builder id)
	Fixture      bool              // a fixture build (test data, not the real release)
	BuilderDeps  map[string]string // name → version of what ran the build (e.g. "dagger": "v0.19.7", "go": "go1.26.0")
	InvocationID string            // the release run's id, when it has one

	Image    string            // image name, e.g. lhcbdirac
	Version  string            // the release version, e.g. v12.0.21
	Tag      string            // the tag pushed (a hotfix build's own)
	Hotfixes []Hotfix          // DIRAC / LHCbDIRAC hotfix sources
	Recipe   map[string]string // recipe parameters (base suite, Python version, …)

	// Dependencies are the build's inputs, each by digest: bases, the
	// lock, sources.
	Dependencies []Dependency
	Byproducts   []Dependency

	StartedOn, FinishedOn time.Time

	// InputsDigest is the digest of everything the release was made from
	// (its lock, bases, sources, recipes, rendered apps): a later release
	// with the same inputs finds its images already built and tested.
	InputsDigest string
}

// Hotfix is one repository and commit built instead of the release's.
type Hotfix struct {
	Name   string // DIRAC, LHCbDIRAC
	Repo   string // URL; credentials are removed
	Branch string
	Commit string // the commit built (40 hex)
}

// Dependency is one input by digest.
type Dependency struct {
	Name   string // e.g. "base:python", "lock", "source:LHCbDIRAC"
	URI    string // where it came from; credentials are removed
	Digest string // "sha256:<hex>" or "gitCommit:<hex>"
}

var (
	hexRe    = regexp.MustCompile(`^[0-9a-f]+$`)
	commitRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
)

// digestSet turns "alg:hex" into an in-toto digest set.
func digestSet(what, d string) (map[string]string, error) {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || !hexRe.MatchString(hex) {
		return nil, fmt.Errorf("%s: digest %q is not <algorithm>:<lower-case hex>", what, d)
	}
	return map[string]string{alg: hex}, nil
}

// Predicate builds the SLSA v1 predicate as JSON.
func Predicate(in Input) ([]byte, error) {
	if !commitRe.MatchString(in.Commit) {
		return nil, fmt.Errorf("provenance: pipeline commit %q is not a full git commit id", in.Commit)
	}
	if in.Image == "" || in.Version == "" {
		return nil, errors.New("provenance: image and version are required")
	}
	if in.StartedOn.IsZero() || in.FinishedOn.Before(in.StartedOn) {
		return nil, fmt.Errorf("provenance: build times %s .. %s are not a build's", in.StartedOn.Format(time.RFC3339), in.FinishedOn.Format(time.RFC3339))
	}
	ext := map[string]any{"image": in.Image, "version": in.Version}
	if in.Tag != "" {
		ext["tag"] = in.Tag
	}
	if in.Fixture {
		ext["fixture"] = true
	}
	if in.InputsDigest != "" {
		ext["inputsDigest"] = in.InputsDigest
	}
	if len(in.Hotfixes) > 0 {
		var hs []any
		for i, h := range in.Hotfixes {
			if h.Name == "" || h.Repo == "" || !commitRe.MatchString(h.Commit) {
				return nil, fmt.Errorf("provenance: hotfix %d (%s): a name, a repository and a full commit id are required", i+1, h.Name)
			}
			m := map[string]any{"name": h.Name, "repository": redact.URL(h.Repo), "commit": h.Commit}
			if h.Branch != "" {
				m["branch"] = h.Branch
			}
			hs = append(hs, m)
		}
		ext["hotfixes"] = hs
	}
	if len(in.Recipe) > 0 {
		r := map[string]any{}
		for k, v := range in.Recipe {
			r[k] = redact.URL(v)
		}
		ext["recipe"] = r
	}
	extS, err := structpb.NewStruct(ext)
	if err != nil {
		return nil, fmt.Errorf("provenance: external parameters: %w", err)
	}
	deps, err := descriptors("dependency", in.Dependencies)
	if err != nil {
		return nil, err
	}
	byp, err := descriptors("byproduct", in.Byproducts)
	if err != nil {
		return nil, err
	}
	version := map[string]string{"lhcbdirac-pipeline": in.Commit}
	for k, v := range in.BuilderDeps {
		version[k] = v
	}
	p := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   extS,
			ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{
			Builder: &slsa.Builder{Id: BuilderID(in.Commit), Version: version},
			Metadata: &slsa.BuildMetadata{
				InvocationId: in.InvocationID,
				StartedOn:    timestamppb.New(in.StartedOn),
				FinishedOn:   timestamppb.New(in.FinishedOn),
			},
			Byproducts: byp,
		},
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return protojson.Marshal(p)
}

func descriptors(what string, ds []Dependency) ([]*intoto.ResourceDescriptor, error) {
	var out []*intoto.ResourceDescriptor
	for i, d := range ds {
		if d.Name == "" {
			return nil, fmt.Errorf("provenance: %s %d has no name", what, i+1)
		}
		set, err := digestSet(fmt.Sprintf("provenance: %s %s", what, d.Name), d.Digest)
		if err != nil {
			return nil, err
		}
		rd := &intoto.ResourceDescriptor{Name: d.Name, Uri: redact.URL(d.URI), Digest: set}
		if err := rd.Validate(); err != nil {
			return nil, fmt.Errorf("provenance: %s %s: %w", what, d.Name, err)
		}
		out = append(out, rd)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Parsed is a provenance predicate read back.
type Parsed struct {
	BuilderID    string
	Builder      map[string]string // builder versions
	BuildType    string
	External     map[string]any
	Dependencies []Dependency
	Byproducts   []Dependency
	InvocationID string
	StartedOn    time.Time
	FinishedOn   time.Time
}

// Commit is the pipeline commit the builder id names, "" when it names
// another builder.
func (p *Parsed) Commit() string {
	c, ok := strings.CutPrefix(p.BuilderID, Pipeline+"@")
	if !ok {
		return ""
	}
	return c
}

// Fixture says whether the build was a fixture build.
func (p *Parsed) Fixture() bool { f, _ := p.External["fixture"].(bool); return f }

// InputsDigest is the digest of the release's inputs ("" when not recorded).
func (p *Parsed) InputsDigest() string { d, _ := p.External["inputsDigest"].(string); return d }

// Version is the release version built.
func (p *Parsed) Version() string { v, _ := p.External["version"].(string); return v }

// Parse reads a predicate (JSON) with the bindings and checks it is valid
// SLSA v1.
func Parse(b []byte) (*Parsed, error) {
	var p slsa.Provenance
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("provenance: not SLSA v1 provenance: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	out := &Parsed{
		BuilderID: p.GetRunDetails().GetBuilder().GetId(),
		Builder:   p.GetRunDetails().GetBuilder().GetVersion(),
		BuildType: p.GetBuildDefinition().GetBuildType(),
		External:  p.GetBuildDefinition().GetExternalParameters().AsMap(),
	}
	md := p.GetRunDetails().GetMetadata()
	out.InvocationID = md.GetInvocationId()
	if md.GetStartedOn() != nil {
		out.StartedOn = md.GetStartedOn().AsTime()
	}
	if md.GetFinishedOn() != nil {
		out.FinishedOn = md.GetFinishedOn().AsTime()
	}
	out.Dependencies = parsedDeps(p.GetBuildDefinition().GetResolvedDependencies())
	out.Byproducts = parsedDeps(p.GetRunDetails().GetByproducts())
	return out, nil
}

func parsedDeps(rds []*intoto.ResourceDescriptor) []Dependency {
	var out []Dependency
	for _, rd := range rds {
		d := Dependency{Name: rd.GetName(), URI: rd.GetUri()}
		algs := make([]string, 0, len(rd.GetDigest()))
		for a := range rd.GetDigest() {
			algs = append(algs, a)
		}
		sort.Strings(algs)
		if len(algs) > 0 {
			d.Digest = algs[0] + ":" + rd.GetDigest()[algs[0]]
		}
		out = append(out, d)
	}
	return out
}
