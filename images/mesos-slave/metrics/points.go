package metrics

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/lhcbdirac/lhcbdirac-pipeline/internal/httpbody"
)

// MaxTagValue bounds a tag value in bytes. InfluxDB refuses a series key
// (measurement and tags) over 64 KiB, and no honest label comes near this:
// a point with a longer one is refused here, named and counted.
const MaxTagValue = 1024

// PointError says why a container's points could not be encoded (an odd
// label: a control character, a trailing backslash, too long).
type PointError struct {
	ID, Component string // as read, shown shortened
	Reason        string
}

func (e *PointError) Error() string {
	if e.ID == "/" {
		return "the machine's points: " + e.Reason
	}
	return fmt.Sprintf("container %q (dirac_component %q): %s", httpbody.Line(e.ID, 80), httpbody.Line(e.Component, 80), e.Reason)
}

// Key is the container and the kind of problem (without sizes), for
// logging each once.
func (e *PointError) Key() string { return e.ID + "\x00" + digits.ReplaceAllString(e.Reason, "N") }

// checkTag says what is wrong with a tag value (what InfluxDB's line
// protocol cannot carry, or longer than MaxTagValue), or "".
func checkTag(key, value string) string {
	switch {
	case len(value) > MaxTagValue:
		return fmt.Sprintf("tag %s is %d bytes long, over the %d-byte limit", key, len(value), MaxTagValue)
	case !utf8.ValidString(value):
		return fmt.Sprintf("tag %s is not valid UTF-8", key)
	case strings.IndexFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Sprintf("tag %s holds a control character: %s", key, httpbody.Line(strconv.QuoteToASCII(value), 100))
	case strings.HasSuffix(value, "\\"):
		return fmt.Sprintf("tag %s ends in a backslash: %q", key, httpbody.Line(value, 100))
	}
	return ""
}

// Points encodes one container's (or the machine's) reading as InfluxDB
// line protocol: the seed's measurements and tags — cpu, memory, network
// (per interface, tag name, and in aggregate), tasks, and for the machine
// filesystem (tag device); tags host, dirac_component, docker_id, plus
// app_id and task_id where the container's environment gives them.
// Counters are written as rates from prev to cur (cpu in cores, network per
// second); without prev, only the gauges (memory, tasks) are written.
//
// It returns the points encoded, and the points it could not encode with
// the first reason (a *PointError): a point with an odd label is refused
// whole, never written with its label changed.
func Points(enc *lineprotocol.Encoder, host string, prev, cur *Sample) (n, bad int, why error) {
	tags := [][2]string{{"host", host}}
	if cur.ID != "/" {
		tags = append(tags, [2]string{"dirac_component", cur.Component}, [2]string{"docker_id", cur.ID})
		if cur.AppID != "" {
			tags = append(tags, [2]string{"app_id", cur.AppID})
		}
		if cur.TaskID != "" {
			tags = append(tags, [2]string{"task_id", cur.TaskID})
		}
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i][0] < tags[j][0] })
	refuse := func(reason string) {
		bad++
		if why == nil {
			why = &PointError{ID: cur.ID, Component: cur.Component, Reason: reason}
		}
	}
	tagProblem := ""
	for _, kv := range tags {
		if tagProblem = checkTag(kv[0], kv[1]); tagProblem != "" {
			break
		}
	}
	point := func(measurement string, extra [2]string, fields []field) {
		if len(fields) == 0 {
			return
		}
		if tagProblem != "" {
			refuse(tagProblem)
			return
		}
		t := tags
		if extra[0] != "" {
			if p := checkTag(extra[0], extra[1]); p != "" {
				refuse(measurement + ": " + p)
				return
			}
			t = append(append([][2]string(nil), tags...), extra)
			sort.Slice(t, func(i, j int) bool { return t[i][0] < t[j][0] })
		}
		enc.StartLine(measurement)
		for _, kv := range t {
			if kv[1] != "" {
				enc.AddTag(kv[0], kv[1])
			}
		}
		sort.Slice(fields, func(i, j int) bool { return fields[i].k < fields[j].k })
		for _, f := range fields {
			enc.AddField(f.k, f.v)
		}
		enc.EndLine(cur.Time)
		if err := enc.Err(); err != nil {
			enc.ClearErr() // the encoder removed the line
			refuse(measurement + ": " + httpbody.Line(err.Error(), 200))
			return
		}
		n++
	}

	var dt time.Duration
	if prev != nil {
		dt = cur.Time.Sub(prev.Time)
	}
	if prev != nil && cur.HasCPU && dt > 0 {
		var fs []field
		cores := func(k string, a, b uint64) {
			if r, ok := rate(a, b, dt); ok {
				fs = append(fs, field{k, lineprotocol.MustNewValue(r / 1e9)})
			}
		}
		cores("usage_cores", prev.CPUTotal, cur.CPUTotal)
		cores("user_cores", prev.CPUUser, cur.CPUUser)
		cores("system_cores", prev.CPUSystem, cur.CPUSystem)
		for i := range cur.PerCPU {
			if i < len(prev.PerCPU) {
				cores("per_cpu_cores_"+strconv.Itoa(i), prev.PerCPU[i], cur.PerCPU[i])
			}
		}
		if len(fs) > 0 {
			fs = append(fs, field{"load_average", lineprotocol.MustNewValue(cur.LoadAverage)})
		}
		point("cpu", [2]string{}, fs)
	}
	point("memory", [2]string{}, gauges(cur.Memory))
	point("tasks", [2]string{}, gauges(cur.Tasks))
	if prev != nil && dt > 0 {
		before := map[string]Interface{}
		for _, in := range prev.Network {
			before[in.Name] = in
		}
		sum := map[string]float64{}
		any := false
		for _, in := range cur.Network {
			p, ok := before[in.Name]
			if !ok {
				continue
			}
			var fs []field
			for _, k := range NetworkCounters {
				if r, ok := rate(p.Counters[k], in.Counters[k], dt); ok {
					fs = append(fs, field{k + "_per_s", lineprotocol.MustNewValue(r)})
					sum[k] += r
				}
			}
			point("network", [2]string{"name", in.Name}, fs)
			any = any || len(fs) > 0
		}
		if any {
			var fs []field
			for k, v := range sum {
				fs = append(fs, field{k + "_per_s", lineprotocol.MustNewValue(v)})
			}
			point("network", [2]string{}, fs)
		}
	}
	for _, d := range cur.Disks {
		var fs []field
		for k, v := range d.Fields {
			if lv, ok := lineprotocol.NewValue(v); ok {
				fs = append(fs, field{k, lv})
			}
		}
		point("filesystem", [2]string{"device", d.Device}, fs)
	}
	return n, bad, why
}

type field struct {
	k string
	v lineprotocol.Value
}

func gauges(m map[string]float64) []field {
	var fs []field
	for k, v := range m {
		fs = append(fs, field{k, lineprotocol.MustNewValue(v)})
	}
	return fs
}
