package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The page's figures, computed once from the cleaned Release: both the
// HTML and the Markdown are written from this, so they cannot disagree.

type view struct {
	R         Release // cleaned
	Verdict   verdict
	Facts     []fact
	Stages    []stageView
	Cards     []card
	Timeline  timelineView
	Images    imagesView
	Lock      lockView
	Smoke     smokeView
	Evidence  evidenceView
	Deploy    deployView
	Problems  []string
	Generated string
	Started   string
}

type verdict struct{ Class, Label, Detail string }

type fact struct {
	Label, Value, Title string
	Mono                bool
}

type stageView struct{ Name, Class, Label, Reason, Icon string }

// outcomeIcon goes with the label, never instead of it.
func outcomeIcon(o Outcome) string {
	switch o {
	case Passed:
		return "✓"
	case Failed:
		return "✗"
	case Cached:
		return "↻"
	case Skipped:
		return "⤼"
	case CannotRunHere:
		return "⊘"
	case NotReached:
		return "○"
	}
	return "?"
}

type card struct{ Label, Value, Sub, Class, Href, Figure string }

// outcomeClass and outcomeLabel are the one vocabulary of the page.
func outcomeClass(o Outcome) string {
	switch o {
	case Passed, Failed, Cached, Skipped:
		return string(o)
	case CannotRunHere:
		return "cannot"
	case NotReached:
		return "notreached"
	}
	return "unknown"
}

func outcomeLabel(o Outcome) string {
	switch o {
	case CannotRunHere:
		return "cannot run here"
	case NotReached:
		return "not reached"
	case Passed, Failed, Cached, Skipped:
		return string(o)
	}
	return "unknown (" + string(o) + ")"
}

func (r *Renderer) build(in Release) view {
	rel := clean(in)
	v := view{R: rel}
	p := &v.Problems
	v.Verdict = buildVerdict(rel)
	v.Facts = buildFacts(rel)
	for _, s := range rel.Stages {
		if !validOutcome(s.Outcome, Passed, Failed, Skipped, Cached, NotReached) {
			*p = append(*p, fmt.Sprintf("stage %q: outcome %q is not one of passed, failed, skipped, cached or empty (not reached)", s.Name, s.Outcome))
		}
		v.Stages = append(v.Stages, stageView{Name: s.Name, Class: outcomeClass(s.Outcome), Label: outcomeLabel(s.Outcome), Reason: s.Reason, Icon: outcomeIcon(s.Outcome)})
	}
	absent := "Not recorded for this release."
	if rel.Result.Outcome == Failed {
		absent = "Not reached: the release failed"
		if rel.Result.Stage != "" {
			absent += " at stage " + rel.Result.Stage
		}
		absent += "."
	}
	v.Timeline = buildTimeline(rel, absent, p)
	v.Images = buildImages(rel, absent)
	v.Lock = r.buildLock(rel, absent, p)
	v.Smoke = buildSmoke(rel, absent, p)
	v.Evidence = buildEvidence(rel, absent)
	v.Deploy = buildDeploy(rel, absent, p)
	v.Cards = buildCards(v)
	v.Started = formatTime(rel.Started)
	if !rel.Finished.IsZero() {
		v.Generated = formatTime(rel.Finished)
	} else if !rel.Started.IsZero() {
		v.Generated = formatTime(rel.Started)
	}
	return v
}

func validOutcome(o Outcome, allowed ...Outcome) bool { return slices.Contains(allowed, o) }

func buildVerdict(r Release) verdict {
	switch r.Result.Outcome {
	case Passed:
		return verdict{Class: "passed", Label: "PASSED", Detail: "Every stage passed."}
	case Failed:
		label := "FAILED"
		if r.Result.Stage != "" {
			label += " at " + r.Result.Stage
		}
		return verdict{Class: "failed", Label: label, Detail: r.Result.Error}
	case NotReached:
		return verdict{Class: "notreached", Label: "NO RUN RECORDED", Detail: "This report was made from what the registry holds, not from a run."}
	}
	return verdict{Class: "unknown", Label: strings.ToUpper(outcomeLabel(r.Result.Outcome)), Detail: r.Result.Error}
}

func buildFacts(r Release) []fact {
	var f []fact
	add := func(label, value string, mono bool) {
		if value != "" {
			f = append(f, fact{Label: label, Value: value, Mono: mono})
		}
	}
	addShort := func(label, value, short string) {
		if value != "" {
			f = append(f, fact{Label: label, Value: short, Title: value, Mono: true})
		}
	}
	add("LHCbDIRAC", r.LHCbDIRAC, false)
	add("DIRAC", r.DIRAC, false)
	addShort("Lock", r.LockDigest, shortDigest(r.LockDigest))
	addShort("Pipeline commit", r.PipelineCommit, shortCommit(r.PipelineCommit))
	add("Started", formatTime(r.Started), false)
	if !r.Started.IsZero() && !r.Finished.IsZero() {
		add("Took", formatDuration(r.Finished.Sub(r.Started)), false)
	}
	return f
}

// --- timeline ---------------------------------------------------------------

type timelineView struct {
	Empty                 string
	Width, Height         int
	LabelX, ChartX        int
	ChartW                float64
	AxisY, GridBottom     int
	Ticks                 []tick
	Groups                []groupView
	Rows                  []rowView
	Steps, MaxConcurrent  int
	Cached, Skipped, Fail int
	Span                  string
	Start                 string
}

type tick struct {
	X     float64
	Label string
}

type groupView struct {
	Name, Class string
	Y           int
	BandX       float64
	BandW       float64
}

type rowView struct {
	Y                 int
	Label, Title      string
	X, W              float64
	Class, Outcome    string
	Dur               string
	DurX              float64
	DurAnchor         string
	Stage, Start, End string
}

const (
	chartWidth  = 1000
	labelWidth  = 300
	rowHeight   = 20
	axisHeight  = 26
	rightMargin = 16
	labelRunes  = 44
)

func buildTimeline(r Release, absent string, p *[]string) timelineView {
	tv := timelineView{Empty: absent}
	if len(r.Steps) == 0 {
		return tv
	}
	tv.Empty = ""
	steps := slices.Clone(r.Steps)
	open := map[int]bool{} // no end recorded: it ran until the release stopped
	for i, s := range steps {
		if !validOutcome(s.Outcome, Passed, Failed, Cached, Skipped) {
			*p = append(*p, fmt.Sprintf("timeline step %q: outcome %q is not one of passed, failed, cached, skipped", s.Name, s.Outcome))
		}
		if s.Start.IsZero() {
			*p = append(*p, fmt.Sprintf("timeline step %q: no start time", s.Name))
		}
		switch {
		case s.End.IsZero():
			open[i] = true
		case s.End.Before(s.Start):
			*p = append(*p, fmt.Sprintf("timeline step %q: ends (%s) before it starts (%s)", s.Name, formatTime(s.End), formatTime(s.Start)))
			steps[i].End = s.Start
		}
	}
	// the window: the release's own, widened to every step
	t0, t1 := r.Started, r.Finished
	for i, s := range steps {
		if !s.Start.IsZero() && (t0.IsZero() || s.Start.Before(t0)) {
			t0 = s.Start
		}
		if !open[i] && (t1.IsZero() || s.End.After(t1)) {
			t1 = s.End
		}
		if open[i] && (t1.IsZero() || s.Start.After(t1)) {
			t1 = s.Start
		}
	}
	for i := range steps {
		if steps[i].Start.IsZero() { // drawn at the window's start
			steps[i].Start = t0
		}
		if open[i] {
			steps[i].End = t1
			steps[i].Reason = strings.TrimPrefix(steps[i].Reason+"; no end recorded", "; ")
		}
		if steps[i].End.Before(steps[i].Start) {
			steps[i].End = steps[i].Start
		}
	}
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Second
	}
	tv.Span, tv.Start = formatDuration(t1.Sub(t0)), formatTime(t0)
	tv.Width, tv.LabelX, tv.ChartX = chartWidth, 8, labelWidth
	tv.ChartW = float64(chartWidth - labelWidth - rightMargin)
	x := func(t time.Time) float64 { return float64(tv.ChartX) + tv.ChartW*float64(t.Sub(t0))/float64(span) }

	// rows grouped by stage, in the release's stage order, then by start
	order := map[string]int{}
	for i, s := range r.Stages {
		if _, ok := order[s.Name]; !ok {
			order[s.Name] = i
		}
	}
	for _, s := range steps {
		if _, ok := order[s.Stage]; !ok {
			order[s.Stage] = len(order) + 1000
		}
	}
	slices.SortStableFunc(steps, func(a, b Step) int {
		return cmp.Or(cmp.Compare(order[a.Stage], order[b.Stage]), a.Start.Compare(b.Start))
	})
	stageOutcome := map[string]Outcome{}
	for _, s := range r.Stages {
		stageOutcome[s.Name] = s.Outcome
	}
	y := axisHeight
	for i := 0; i < len(steps); {
		j := i
		lo, hi := steps[i].Start, steps[i].End
		for j < len(steps) && steps[j].Stage == steps[i].Stage {
			lo, hi = minTime(lo, steps[j].Start), maxTime(hi, steps[j].End)
			j++
		}
		name := steps[i].Stage
		if name == "" {
			name = "(no stage)"
		}
		g := groupView{Name: truncate(name, labelRunes), Y: y, BandX: x(lo), BandW: max(x(hi)-x(lo), 2), Class: outcomeClass(stageOutcome[steps[i].Stage])}
		tv.Groups = append(tv.Groups, g)
		y += rowHeight
		for _, s := range steps[i:j] {
			tv.Rows = append(tv.Rows, stepRow(s, y, x, t0, float64(tv.ChartX)+tv.ChartW))
			y += rowHeight
		}
		i = j
	}
	tv.GridBottom = y
	tv.Height = y + 6
	tv.AxisY = axisHeight - 8
	for _, off := range tickOffsets(span) {
		tv.Ticks = append(tv.Ticks, tick{X: x(t0.Add(off)), Label: formatOffset(off)})
	}
	tv.Steps = len(steps)
	tv.MaxConcurrent = maxConcurrent(steps)
	for _, s := range steps {
		switch s.Outcome {
		case Cached:
			tv.Cached++
		case Skipped:
			tv.Skipped++
		case Failed:
			tv.Fail++
		}
	}
	return tv
}

func stepRow(s Step, y int, x func(time.Time) float64, t0 time.Time, right float64) rowView {
	d := s.End.Sub(s.Start)
	row := rowView{
		Y: y, Label: truncate(s.Name, labelRunes), X: x(s.Start), W: max(x(s.End)-x(s.Start), 2),
		Class: outcomeClass(s.Outcome), Outcome: outcomeLabel(s.Outcome), Dur: formatDuration(d),
		Stage: s.Stage, Start: formatOffset(s.Start.Sub(t0)), End: formatOffset(s.End.Sub(t0)),
	}
	switch s.Outcome {
	case Cached:
		row.Dur = "cached"
		if d >= time.Second {
			row.Dur += " · " + formatDuration(d)
		}
	case Skipped:
		row.Dur = "skipped"
	}
	row.Title = fmt.Sprintf("%s — %s, %s (from +%s to +%s)", s.Name, row.Outcome, formatDuration(d), row.Start, row.End)
	if s.Reason != "" {
		row.Title += ": " + s.Reason
	}
	row.DurX, row.DurAnchor = row.X+row.W+4, "start"
	if row.DurX+70 > right {
		row.DurX, row.DurAnchor = row.X-4, "end"
	}
	return row
}

// tickOffsets are at most ~10 round offsets across the span.
func tickOffsets(span time.Duration) []time.Duration {
	steps := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 10 {
			step = s
			break
		}
	}
	var out []time.Duration
	for t := time.Duration(0); t <= span; t += step {
		out = append(out, t)
	}
	return out
}

// maxConcurrent is the most steps running at one instant.
func maxConcurrent(steps []Step) int {
	type ev struct {
		t     time.Time
		delta int
	}
	var evs []ev
	for _, s := range steps {
		if s.End.After(s.Start) {
			evs = append(evs, ev{s.Start, 1}, ev{s.End, -1})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return cmp.Or(a.t.Compare(b.t), cmp.Compare(a.delta, b.delta)) })
	n, most := 0, 0
	for _, e := range evs {
		n += e.delta
		most = max(most, n)
	}
	if most == 0 && len(steps) > 0 {
		most = 1
	}
	return most
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// --- images -----------------------------------------------------------------

type imagesView struct {
	Empty  string
	List   []imageView
	BarMax int64
}

type imageView struct {
	Name, Ref, Digest          string
	Compressed, Uncompressed   string
	CompW, UncompW             float64
	Prev                       *prevView
	Layers                     []layerView
	LayerCount, MoreLayers     int
	MoreLayersSize             string
	CompressedN, UncompressedN int64
}

type prevView struct {
	Release, Ref, Digest     string
	Compressed, Uncompressed string
	Class                    string // grew, shrank, same
	LayersKnown              bool
	Added, Removed           int
	AddedSize, LayersNote    string
}

type layerView struct {
	Digest, Full, Size, CreatedBy string
	W                             float64
	New                           bool
}

const (
	shownLayers = 5
	sizeBarW    = 160.0
)

func buildImages(r Release, absent string) imagesView {
	iv := imagesView{Empty: absent}
	if len(r.Images) == 0 {
		return iv
	}
	iv.Empty = ""
	for _, im := range r.Images {
		iv.BarMax = max(iv.BarMax, im.Compressed, im.Uncompressed)
	}
	bar := func(n int64) float64 {
		if iv.BarMax <= 0 || n <= 0 {
			return 0
		}
		return max(1, sizeBarW*float64(n)/float64(iv.BarMax))
	}
	for _, im := range r.Images {
		v := imageView{Name: im.Name, Ref: im.Ref, Digest: digestOf(im.Ref),
			Compressed: formatBytes(im.Compressed), Uncompressed: formatBytes(im.Uncompressed),
			CompW: bar(im.Compressed), UncompW: bar(im.Uncompressed), LayerCount: len(im.Layers),
			CompressedN: im.Compressed, UncompressedN: im.Uncompressed}
		var prevLayers map[string]bool
		if pi := im.Previous; pi != nil {
			pv := &prevView{Release: pi.Release, Ref: pi.Ref, Digest: digestOf(pi.Ref),
				Compressed: formatDelta(im.Compressed, pi.Compressed), Uncompressed: formatDelta(im.Uncompressed, pi.Uncompressed)}
			// a growth of more than 5 % is worth a look; less is noise
			switch {
			case pi.Compressed > 0 && float64(im.Compressed-pi.Compressed) > 0.05*float64(pi.Compressed):
				pv.Class = "grew-much"
			case im.Compressed > pi.Compressed:
				pv.Class = "grew"
			case im.Compressed < pi.Compressed:
				pv.Class = "shrank"
			default:
				pv.Class = "same"
			}
			if pi.Layers != nil {
				pv.LayersKnown = true
				prevLayers = map[string]bool{}
				for _, d := range pi.Layers {
					prevLayers[d] = true
				}
				cur := map[string]bool{}
				var added int64
				for _, l := range im.Layers {
					cur[l.Digest] = true
					if !prevLayers[l.Digest] {
						pv.Added++
						added += l.Size
					}
				}
				for _, d := range pi.Layers {
					if !cur[d] {
						pv.Removed++
					}
				}
				pv.AddedSize = formatBytes(added)
				switch {
				case pv.Added == 0 && pv.Removed == 0:
					pv.LayersNote = "the same layers"
				case pv.Added == 0:
					pv.LayersNote = fmt.Sprintf("layers: none new, %d gone", pv.Removed)
				default:
					pv.LayersNote = fmt.Sprintf("layers: %d new (%s), %d gone", pv.Added, pv.AddedSize, pv.Removed)
				}
			}
			v.Prev = pv
		}
		layers := slices.Clone(im.Layers)
		slices.SortStableFunc(layers, func(a, b Layer) int { return cmp.Compare(b.Size, a.Size) })
		var largest int64
		if len(layers) > 0 {
			largest = layers[0].Size
		}
		for i, l := range layers {
			if i >= shownLayers {
				v.MoreLayers++
				continue
			}
			w := 0.0
			if largest > 0 && l.Size > 0 {
				w = max(1, 120*float64(l.Size)/float64(largest))
			}
			v.Layers = append(v.Layers, layerView{Digest: shortDigest(l.Digest), Full: l.Digest, Size: formatBytes(l.Size),
				CreatedBy: l.CreatedBy, W: w, New: prevLayers != nil && !prevLayers[l.Digest]})
		}
		if v.MoreLayers > 0 {
			var rest int64
			for _, l := range layers[shownLayers:] {
				rest += l.Size
			}
			v.MoreLayersSize = formatBytes(rest)
		}
		iv.List = append(iv.List, v)
	}
	return iv
}

// --- lock -------------------------------------------------------------------

type lockView struct {
	Empty      string
	Diff       LockDiff
	Components []componentChange
	All        []Distribution
	Changes    []lockChangeView
}

type componentChange struct{ Name, From, To, Kind string }

type lockChangeView struct {
	LockChange
	Class, Label string
}

func kindClass(k ChangeKind) string {
	if k == Refiled {
		return "refiled"
	}
	return string(k)
}

func (r *Renderer) buildLock(rel Release, absent string, p *[]string) lockView {
	lv := lockView{Empty: absent}
	in := rel.Lock
	if len(in.Current) == 0 {
		return lv
	}
	lv.Empty = ""
	lv.All = slices.Clone(in.Current)
	SortDistributions(lv.All)
	if in.PreviousRelease == "" || in.Previous == nil {
		_, dupes := DiffLocks(in.Current, nil, r.compare())
		for _, d := range dupes {
			*p = append(*p, fmt.Sprintf("lock: distribution %q is listed twice; the first entry is shown", d))
		}
		lv.Diff = LockDiff{Against: in.PreviousRelease, Missing: in.PreviousMissing, Total: len(in.Current)}
		if lv.Diff.Missing == "" {
			lv.Diff.Missing = "there is no previous release to compare with"
		}
		return lv
	}
	d, dupes := DiffLocks(in.Current, in.Previous, r.compare())
	for _, n := range dupes {
		*p = append(*p, fmt.Sprintf("lock: distribution %q is listed twice; the first entry is used", n))
	}
	d.Against = in.PreviousRelease
	lv.Diff = d
	for _, c := range d.Changes {
		lv.Changes = append(lv.Changes, lockChangeView{LockChange: c, Class: kindClass(c.Kind), Label: string(c.Kind)})
		if keyRank(c.Name) < len(keyComponents) {
			lv.Components = append(lv.Components, componentChange{Name: c.Name, From: c.From, To: c.To, Kind: string(c.Kind)})
		}
	}
	return lv
}

// --- smoke ------------------------------------------------------------------

type smokeView struct {
	Empty                         string
	Services                      []serviceView
	Total, Passed, Failed, Cannot int
	Checks                        int
	Slowest                       string
}

type serviceView struct {
	Name, Class, Label string
	Checks             []checkView
	Total              string
	BarW               float64
	Log                []string
	ID                 string
}

type checkView struct{ Name, Class, Label, Dur, Reason string }

func buildSmoke(r Release, absent string, p *[]string) smokeView {
	sv := smokeView{Empty: absent}
	if len(r.Smoke) == 0 {
		return sv
	}
	sv.Empty = ""
	var slowest time.Duration
	totals := make([]time.Duration, len(r.Smoke))
	for i, s := range r.Smoke {
		for _, c := range s.Checks {
			totals[i] += c.Duration
		}
		slowest = max(slowest, totals[i])
	}
	for i, s := range r.Smoke {
		v := serviceView{Name: s.Name, Total: formatDuration(totals[i]), Log: s.Log, ID: fmt.Sprintf("svc-%d", i+1)}
		if slowest > 0 {
			v.BarW = 80 * float64(totals[i]) / float64(slowest)
		}
		failed, cannot := 0, 0
		for _, c := range s.Checks {
			if !validOutcome(c.Outcome, Passed, Failed, CannotRunHere) {
				*p = append(*p, fmt.Sprintf("smoke %q, check %q: outcome %q is not one of passed, failed, cannot-run-here", s.Name, c.Name, c.Outcome))
			}
			switch c.Outcome {
			case Failed:
				failed++
			case CannotRunHere:
				cannot++
			case Passed:
			default:
				failed++ // what is not known to pass did not pass
			}
			v.Checks = append(v.Checks, checkView{Name: c.Name, Class: outcomeClass(c.Outcome), Label: outcomeLabel(c.Outcome), Dur: formatDuration(c.Duration), Reason: c.Reason})
		}
		sv.Checks += len(s.Checks)
		switch {
		case len(s.Checks) == 0:
			v.Class, v.Label = "unknown", "no checks"
			*p = append(*p, fmt.Sprintf("smoke %q: no checks recorded", s.Name))
			sv.Failed++
		case failed > 0:
			v.Class, v.Label = "failed", "failed"
			sv.Failed++
		case cannot == len(s.Checks):
			v.Class, v.Label = "cannot", "cannot run here"
			sv.Cannot++
		case cannot > 0:
			v.Class, v.Label = "passed", fmt.Sprintf("passed (%s cannot run here)", plural(cannot, "check", "checks"))
			sv.Passed++
		default:
			v.Class, v.Label = "passed", "passed"
			sv.Passed++
		}
		sv.Services = append(sv.Services, v)
	}
	sv.Total = len(sv.Services)
	// failures first: that is what the reader came for
	rank := map[string]int{"failed": 0, "unknown": 0, "cannot": 1, "passed": 2}
	slices.SortStableFunc(sv.Services, func(a, b serviceView) int { return cmp.Compare(rank[a.Class], rank[b.Class]) })
	sv.Slowest = formatDuration(slowest)
	return sv
}

// --- evidence ---------------------------------------------------------------

type evidenceView struct {
	Empty              string
	Rows               []evidenceRow
	Verified, Unproven int
}

type evidenceRow struct{ Image, Digest, Kind, Class, Label, Reason string }

func buildEvidence(r Release, absent string) evidenceView {
	ev := evidenceView{Empty: absent}
	if len(r.Evidence) == 0 {
		return ev
	}
	ev.Empty = ""
	digest := map[string]string{}
	for _, im := range r.Images {
		digest[im.Name] = digestOf(im.Ref)
	}
	for _, e := range r.Evidence {
		row := evidenceRow{Image: e.Image, Digest: digest[e.Image], Kind: e.Kind, Reason: e.Reason, Class: "failed", Label: "not verified"}
		if e.Verified {
			row.Class, row.Label = "passed", "verified"
			ev.Verified++
		} else {
			ev.Unproven++
		}
		ev.Rows = append(ev.Rows, row)
	}
	return ev
}

// --- deploy -----------------------------------------------------------------

type deployView struct {
	Empty                     string
	Mode, Target              string
	Class, Label, Message     string
	Create, Update, Unchanged int
	Changed                   []appView
	UnchangedIDs              []string
}

type appView struct {
	ID, Action, Class   string
	Changes             []FieldChange
	Outcome, OutcomeCls string
	Message             string
}

func deployOutcome(o DeployOutcome, dryRun bool) (class, label string) {
	switch o {
	case Deployed:
		return "passed", "deployed"
	case RolledBack:
		return "failed", "rolled back"
	case DeployFailed:
		return "failed", "failed"
	case DeploySkip:
		return "skipped", "skipped"
	case NotDeployed:
		if dryRun {
			return "skipped", "dry run: nothing deployed"
		}
		return "notreached", "not deployed"
	}
	return "unknown", "unknown (" + string(o) + ")"
}

func buildDeploy(r Release, absent string, p *[]string) deployView {
	d := r.Deploy
	dv := deployView{Empty: absent}
	if len(d.Apps) == 0 && d.Outcome == NotDeployed && !d.DryRun && d.Message == "" {
		return dv
	}
	dv.Empty = ""
	switch {
	case d.DryRun && d.Target == "":
		dv.Mode = "no Marathon to compare with: the plan is what a first deploy would create"
	case d.DryRun:
		dv.Mode = "the plan against what Marathon runs at"
	default:
		dv.Mode = "to Marathon at"
	}
	dv.Target = d.Target
	dv.Class, dv.Label = deployOutcome(d.Outcome, d.DryRun)
	if dv.Class == "unknown" {
		*p = append(*p, fmt.Sprintf("deploy: outcome %q is not one of deployed, rolled-back, failed, skipped or empty", d.Outcome))
	}
	dv.Message = d.Message
	for _, a := range d.Apps {
		switch a.Action {
		case Create:
			dv.Create++
		case Update:
			dv.Update++
		case Unchanged:
			dv.Unchanged++
			if a.Outcome == NotDeployed || a.Outcome == Deployed {
				dv.UnchangedIDs = append(dv.UnchangedIDs, a.ID)
				continue
			}
		default:
			*p = append(*p, fmt.Sprintf("deploy: app %q: action %q is not one of create, update, unchanged", a.ID, a.Action))
		}
		av := appView{ID: a.ID, Action: string(a.Action), Class: "act-" + string(a.Action), Changes: a.Changes, Message: a.Message}
		if a.Outcome != NotDeployed {
			av.OutcomeCls, av.Outcome = deployOutcome(a.Outcome, false)
		}
		dv.Changed = append(dv.Changed, av)
	}
	return dv
}

// --- the cards under the header --------------------------------------------

func buildCards(v view) []card {
	var cs []card
	// a section with nothing to show still has its card: "not reached"
	// says at a glance how far a failed release got
	missing := func(label, href, empty string) {
		value := "not reached"
		if !strings.HasPrefix(empty, "Not reached") {
			value = "not recorded"
		}
		cs = append(cs, card{Label: label, Value: value, Class: "notreached", Href: href})
	}
	if iv := v.Images; iv.Empty != "" {
		missing("Images", "#images", iv.Empty)
	} else {
		var total int64
		for _, im := range iv.List {
			total += im.CompressedN
		}
		cs = append(cs, card{Label: "Images", Value: fmt.Sprint(len(iv.List)), Sub: formatBytes(total) + " compressed", Href: "#images", Figure: "images"})
	}
	if l := v.Lock.Diff; v.Lock.Empty != "" {
		missing("Distributions", "#lock", v.Lock.Empty)
	} else {
		sub := "no previous lock"
		if l.Compared {
			sub = fmt.Sprintf("+%d −%d ↑%d ↓%d since %s", l.Added, l.Removed, l.Upgraded, l.Downgraded, l.Against)
		}
		cs = append(cs, card{Label: "Distributions", Value: fmt.Sprint(l.Total), Sub: sub, Href: "#lock", Figure: "lock-total"})
	}
	if s := v.Smoke; s.Empty != "" {
		missing("Services passed", "#smoke", s.Empty)
	} else {
		class := "passed"
		if s.Failed > 0 {
			class = "failed"
		}
		sub := fmt.Sprintf("%d failed", s.Failed)
		if s.Cannot > 0 {
			sub += fmt.Sprintf(", %d cannot run here", s.Cannot)
		}
		cs = append(cs, card{Label: "Services passed", Value: fmt.Sprintf("%d / %d", s.Passed, s.Total), Sub: sub, Class: class, Href: "#smoke", Figure: "smoke-passed"})
	}
	if e := v.Evidence; e.Empty != "" {
		missing("Evidence verified", "#evidence", e.Empty)
	} else {
		class := "passed"
		if e.Unproven > 0 {
			class = "failed"
		}
		cs = append(cs, card{Label: "Evidence verified", Value: fmt.Sprintf("%d / %d", e.Verified, len(e.Rows)), Class: class, Href: "#evidence", Figure: "evidence-verified"})
	}
	if d := v.Deploy; d.Empty != "" {
		missing("Deploy", "#deploy", d.Empty)
	} else {
		cs = append(cs, card{Label: "Deploy", Value: d.Label, Sub: fmt.Sprintf("%d create, %d update, %d unchanged", d.Create, d.Update, d.Unchanged), Class: d.Class, Href: "#deploy", Figure: "deploy-outcome"})
	}
	return cs
}
