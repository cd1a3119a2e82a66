package catalog

import (
	"fmt"
	"strings"
)

// cannotRun decides, from the service's own code and configuration, what
// it needs that a build machine cannot have; "" when nothing.
func cannotRun(s *Service) string {
	var missing []string
	for _, d := range s.Databases {
		if d.Optional {
			continue
		}
		switch d.Backend {
		case "OpenSearch":
			missing = append(missing, fmt.Sprintf("an OpenSearch cluster for %s (%s is an OpenSearch database)", d.FullName, short(d.Class)))
		case "Oracle":
			missing = append(missing, fmt.Sprintf("an Oracle server for %s (%s talks to Oracle through oracledb)", d.FullName, short(d.Class)))
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "cannot run here: " + strings.Join(missing, "; ")
}

func short(class string) string { return class[strings.LastIndex(class, ".")+1:] }
