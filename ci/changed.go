package ci

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"reflect"
	"sort"
	"strings"

	"github.com/lhcbdirac/lhcbdirac-pipeline/marathon/services"
)

// imageInputs are the paths whose change affects every service's image or
// its smoke test; any change there means every service is tested.
var imageInputs = []string{"images/lhcbdirac/", "images/pinger/", "images/internal/", "images/images.go", "dips/", "internal/", "pipeline/", "marathon/render/", "marathon/runspec/", "go.mod", "go.sum"}

// ChangedServices lists the services a merge request must run with
// testService: all of them when an image input changed, else those whose
// entry in the services file (at servicesPath, relative to the repository)
// differs from base.
func ChangedServices(ctx context.Context, repoDir, base, servicesPath string, head *services.File) ([]string, error) {
	out, err := git(ctx, repoDir, "diff", "--name-only", base+"...HEAD", "--")
	if err != nil {
		return nil, fmt.Errorf("comparing with %s: %w", base, err)
	}
	all := func() []string {
		var names []string
		for _, s := range head.Services {
			names = append(names, s.Name)
		}
		return names
	}
	files := strings.Fields(out)
	for _, f := range files {
		for _, p := range imageInputs {
			if strings.HasPrefix(f, p) || f == p {
				return all(), nil
			}
		}
	}
	touched := false
	for _, f := range files {
		touched = touched || f == servicesPath
	}
	if !touched {
		return nil, nil
	}
	old, err := git(ctx, repoDir, "show", base+":"+servicesPath)
	if err != nil {
		return all(), nil // new file: everything in it is new
	}
	prev, err := services.Parse(base+":"+servicesPath, []byte(old))
	if err != nil {
		return all(), nil
	}
	var changed []string
	for _, s := range head.Services {
		o, ok := prev.Find(s.Name)
		if !ok || !reflect.DeepEqual(strip(o), strip(s)) || !reflect.DeepEqual(prev.Defaults, head.Defaults) || !reflect.DeepEqual(prev.Environments, head.Environments) {
			changed = append(changed, s.Name)
		}
	}
	sort.Strings(changed)
	return changed, nil
}

// strip drops what is not the service's definition (its line number).
func strip(s services.Service) services.Service {
	return services.Service{Name: s.Name, Port: s.Port, Settings: s.Settings, Environments: s.Environments}
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
