package catalog

import (
	"fmt"
	"strings"
)

// KitConfigurationName is the configuration a Configuration Server of
// the kit is the controller of.
const KitConfigurationName = "LHCbDIRAC-Smoke"

// needs adds what a service's initialisation requires beyond its section
// and databases, read from the classes it builds.
func needs(s *Service) {
	for _, c := range s.instances {
		// A Configuration Server (ConfigurationSystem.private.ServiceInterface*):
		// ServiceInterfaceBase starts it as a worker, which needs
		// /DIRAC/Configuration/Name and a controller to refresh from,
		// unless /DIRAC/Configuration/Master says it is the controller;
		// then it writes <rootPath>/etc/<Name>.cfg and etc/csbackup.
		if strings.HasPrefix(c, "DIRAC.ConfigurationSystem.private.ServiceInterface") {
			s.Global = map[string]string{"/DIRAC/Configuration/Master": "yes", "/DIRAC/Configuration/Name": KitConfigurationName}
			s.Notes = append(s.Notes, "a Configuration Server: run as the controller of a configuration of its own (a worker needs a controller to refresh from); it writes <rootPath>/etc/"+KitConfigurationName+".cfg and etc/csbackup/")
		}
	}
}

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
