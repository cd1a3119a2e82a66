package runspec

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ExposedPortsEnv gives the image's EXPOSEd ports for apps in deimos's
// format: deimos reads them from the pulled image, which cannot be pulled
// here.
const ExposedPortsEnv = "DEIMOS_EXPOSED_PORTS"

// FromFile reads an app definition and maps it to the spec of one task;
// errors name the file.
func FromFile(path string, o Options) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, err
	}
	s, err := FromApp(b, o)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseOptions reads the settings' text of DEIMOS_EXPOSED_PORTS
// (comma-separated ports, "" for none); errors name the variable.
func ParseOptions(exposedPorts string) (Options, error) {
	var o Options
	if v := exposedPorts; v != "" {
		for _, f := range strings.Split(v, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || p < 1 || p > 65535 {
				return o, fmt.Errorf("%s=%q: %q is not a port (1-65535)", ExposedPortsEnv, v, f)
			}
			o.ExposedPorts = append(o.ExposedPorts, p)
		}
	}
	return o, nil
}
