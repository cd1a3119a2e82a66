package metrics

import (
	"sort"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Points encodes one container's (or the machine's) reading as InfluxDB
// line protocol: the seed's measurements and tags — cpu, memory, network
// (per interface, tag name, and in aggregate), tasks, and for the machine
// filesystem (tag device); tags host, dirac_component, docker_id, plus
// app_id and task_id where the container's environment gives them.
// Counters are written as rates from prev to cur (cpu in cores, network per
// second); without prev, only the gauges (memory, tasks) are written.
func Points(enc *lineprotocol.Encoder, host string, prev, cur *Sample) (n int) {
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
	point := func(measurement string, extra [2]string, fields []field) {
		if len(fields) == 0 {
			return
		}
		enc.StartLine(measurement)
		t := tags
		if extra[0] != "" {
			t = append(append([][2]string(nil), tags...), extra)
			sort.Slice(t, func(i, j int) bool { return t[i][0] < t[j][0] })
		}
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
		if enc.Err() == nil {
			n++
		} else {
			enc.ClearErr()
		}
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
	return n
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
