package catalog

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// ServicesFile is a services file (marathon/services' format, as
// pipeline/services.yaml) listing every service of the catalog: its port
// (Ports: unique, deterministic; a comment says where a port came from
// when not from the ConfigTemplate), its protocol when HTTPS, and
// cannotRun for those that cannot run here. base gives everything else
// (image, environments, defaults, discovery, pingerURL) and the settings
// of the services it lists (instances…), which are kept. The result is
// checked with services.Parse before it is returned.
func ServicesFile(cat *Catalog, base *services.File) ([]byte, error) {
	ports, notes := Ports(cat.Services)
	out := *base
	out.Services = nil
	var dips, https, cannot int
	for _, s := range cat.Services {
		svc, _ := base.Find(s.Name)
		svc.Name, svc.Port = s.Name, ports[s.Name]
		svc.Protocol, svc.CannotRun = "", s.CannotRun
		if s.Protocol == HTTPS {
			svc.Protocol = services.ProtocolHTTPS
			https++
		} else {
			dips++
		}
		if s.CannotRun != "" {
			cannot++
		}
		out.Services = append(out.Services, svc)
	}
	var doc yaml.Node
	if err := doc.Encode(&out); err != nil {
		return nil, err
	}
	if list := mapValue(&doc, "services"); list != nil {
		for i, n := range list.Content {
			name := cat.Services[i].Name
			if note, ok := notes[name]; ok {
				if v := mapValue(n, "port"); v != nil {
					v.LineComment = note
				}
			}
		}
	}
	var exts []string
	for _, e := range cat.Extensions {
		exts = append(exts, e.Name+" "+e.Version)
	}
	doc.HeadComment = fmt.Sprintf("Every service %s ships (written by services:all from the installed\n"+
		"release; images/lhcbdirac/catalog, docs/services.md): %d services, %d DIPS and\n"+
		"%d HTTPS; %d cannot run on a build machine (cannotRun says what is missing).",
		strings.Join(exts, " with "), len(cat.Services), dips, https, cannot)
	if cat.HTTPSProblem != "" {
		doc.HeadComment += "\nNo HTTPS service can start in this installation: " + cat.HTTPSProblem + "."
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if _, err := services.Parse("services:all output", b.Bytes()); err != nil {
		return nil, fmt.Errorf("the written services file does not load: %w", err)
	}
	return b.Bytes(), nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
