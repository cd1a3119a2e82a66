package services

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Discovery configures the registrator app rendered with the services
// (images/registrator): where it reads Marathon and what it writes.
// Absent, no registrator app is rendered.
type Discovery struct {
	Image    string   `yaml:"image,omitempty"`    // repository, no tag; default: next to image, named registrator
	Marathon string   `yaml:"marathon,omitempty"` // Marathon's URL as the registrator's host sees it
	Etcd     []string `yaml:"etcd,omitempty"`     // etcd endpoints
	Prefix   string   `yaml:"prefix,omitempty"`   // etcd key prefix (default /lhcbdirac/discovery)
	Consul   string   `yaml:"consul,omitempty"`   // the Consul agent's HTTP address on the registrator's host
	EnvFile  string   `yaml:"envFile,omitempty"`  // host file of KEY=VALUE credentials (MARATHON_TOKEN…), mounted read-only
	// CheckAllow are URL prefixes a check_http label may point under
	// besides the pinger ({host} and {port} the task's); none by default.
	CheckAllow []string `yaml:"checkAllow,omitempty"`
}

// DiscoveryImage is the registrator's repository.
func (f *File) DiscoveryImage() string {
	if f.Discovery == nil {
		return ""
	}
	if f.Discovery.Image != "" {
		return f.Discovery.Image
	}
	return path.Dir(f.Image) + "/registrator"
}

func (d *Discovery) validate(file string, add func(string, ...any)) {
	where := file + ": discovery."
	httpURL := func(field, v string) {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("%s%s %q: want an http(s) URL", where, field, v)
		} else if u.User != nil {
			add("%s%s: credentials belong in envFile, not in the URL", where, field)
		}
	}
	if d.Marathon == "" {
		add("%smarathon: required (Marathon's URL as the registrator's host sees it)", where)
	} else {
		httpURL("marathon", d.Marathon)
	}
	if len(d.Etcd) == 0 && d.Consul == "" {
		add("%setcd, consul: at least one is required (where the registrator writes)", where)
	}
	for i, e := range d.Etcd {
		httpURL(fmt.Sprintf("etcd[%d]", i), e)
	}
	if d.Consul != "" {
		httpURL("consul", d.Consul)
	}
	if d.Prefix != "" && (!strings.HasPrefix(d.Prefix, "/") || strings.HasSuffix(d.Prefix, "/") || strings.Contains(d.Prefix, "//")) {
		add("%sprefix %q: want an absolute key prefix such as /lhcbdirac/discovery", where, d.Prefix)
	}
	for i, a := range d.CheckAllow {
		probe := strings.NewReplacer("{host}", "h", "{port}", "1").Replace(a)
		if u, err := url.Parse(probe); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.ContainsAny(a, "?#% \\") {
			add("%scheckAllow[%d] %q: want an http(s)://host[:port][/path] prefix ({host} and {port} allowed), no credentials, query or escapes", where, i, a)
		}
	}
	if d.EnvFile != "" && !strings.HasPrefix(d.EnvFile, "/") {
		add("%senvFile %q: want an absolute host path", where, d.EnvFile)
	}
	if d.Image != "" && (strings.ContainsAny(d.Image, "@ ") || strings.Contains(d.Image[strings.LastIndex(d.Image, "/")+1:], ":")) {
		add("%simage %q: give the repository without tag or digest; the release version is the tag", where, d.Image)
	}
}

// Names lists the services' names, in file order.
func (f *File) Names() []string {
	out := make([]string, len(f.Services))
	for i, s := range f.Services {
		out[i] = s.Name
	}
	return out
}
