package runspec

import (
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/app"
)

// taskContextEnv is TaskBuilder.taskContextEnv: the task's id, the app's
// id, version, image and resources, and its labels.
func taskContextEnv(env map[string]string, s Spec, a app.Definition, o Options) {
	env["MESOS_TASK_ID"] = s.TaskID
	env["MARATHON_APP_ID"] = s.AppID
	env["MARATHON_APP_VERSION"] = o.Version
	env["MARATHON_APP_DOCKER_IMAGE"] = s.Image
	// Scala's Double.toString ("0.5", "800.0", "0.0"); gpus is an Int.
	env["MARATHON_APP_RESOURCE_CPUS"] = javaDouble(a.CPUs)
	env["MARATHON_APP_RESOURCE_MEM"] = javaDouble(a.Mem)
	env["MARATHON_APP_RESOURCE_DISK"] = javaDouble(a.Disk)
	env["MARATHON_APP_RESOURCE_GPUS"] = strconv.Itoa(a.GPUs)
	env["MARATHON_APP_ENFORCE_GROUP_ROLE"] = strings.ToUpper(strconv.FormatBool(o.EnforceRole))
	labelsEnv(env, a.Labels)
}

// Marathon's limits on labels in the environment
// (EnvironmentHelper.maxEnvironmentVarLength and maxVariableLength).
const (
	maxEnvValue  = 512
	labelPrefix  = "MARATHON_APP_LABEL_"
	maxLabelName = maxEnvValue - len(labelPrefix)
)

// labelRun is a run of characters an environment name cannot hold;
// Marathon collapses each run to one "_" (labelsToEnvVars.escape).
var labelRun = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

// labelsEnv is EnvironmentHelper.labelsToEnvVars. Marathon lists the names
// in its map's order; here they are sorted, so a spec is reproducible.
func labelsEnv(env map[string]string, labels map[string]string) {
	var names []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if javaLen(k) >= maxLabelName || javaLen(v) >= maxEnvValue {
			continue // Marathon leaves oversized labels out
		}
		name := strings.ToUpper(labelRun.ReplaceAllString(k, "_"))
		names = append(names, name)
		env[labelPrefix+name] = v
	}
	env["MARATHON_APP_LABELS"] = strings.Join(names, " ")
}

// javaLen is a Java string's length, in UTF-16 code units.
func javaLen(s string) int { return len(utf16.Encode([]rune(s))) }

// portRequest is a port as the app asks for it: a container port (with
// port mappings) or a service port (with port definitions); 0 is dynamic.
type portRequest struct {
	name string
	port int
}

// portsEnv is EnvironmentHelper.portsEnv for tasks whose every port has a
// host port (bridge and host networking): PORT<index>, PORT_<requested
// port> (the host port itself when the request was 0), PORT_<NAME> (the
// name upper-cased as it is, not sanitised), PORT and PORTS.
func portsEnv(requested []portRequest, hostPorts []int) map[string]string {
	env := map[string]string{}
	if len(hostPorts) == 0 {
		return env
	}
	all := make([]string, len(hostPorts))
	for i, hp := range hostPorts {
		h := strconv.Itoa(hp)
		all[i] = h
		env["PORT"+strconv.Itoa(i)] = h
		r := requested[i]
		if r.port != 0 {
			env["PORT_"+strconv.Itoa(r.port)] = h
		} else {
			env["PORT_"+h] = h
		}
	}
	for i, hp := range hostPorts {
		if n := requested[i].name; n != "" {
			env["PORT_"+strings.ToUpper(n)] = strconv.Itoa(hp)
		}
	}
	env["PORT"] = all[0]
	env["PORTS"] = strings.Join(all, ",")
	return env
}

// javaDouble formats f as Java's Double.toString: at least one digit after
// the point between 10^-3 and 10^7 ("1.0", "0.5", "200.0"), computerized
// scientific notation outside ("1.0E7", "1.0E-4"), with the shortest digits
// that read back as f.
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	if a := math.Abs(f); a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}
