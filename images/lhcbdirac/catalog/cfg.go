package catalog

import (
	"fmt"
	"strings"
)

// cfg is a section of a DIRAC CFG file, read as diraccfg's
// CFG.loadFromBuffer reads it: "#" comment lines, "Name {" … "}" sections,
// "Key = value" options (the first "=" splits), "Key += value" appends
// ", value". Names keep their order.
type cfg struct {
	names []string
	opts  map[string]string
	subs  map[string]*cfg
}

func newCfg() *cfg { return &cfg{opts: map[string]string{}, subs: map[string]*cfg{}} }

func (c *cfg) add(name string) {
	for _, n := range c.names {
		if n == name {
			return
		}
	}
	c.names = append(c.names, name)
}

func (c *cfg) sub(name string) *cfg {
	if s, ok := c.subs[name]; ok {
		return s
	}
	s := newCfg()
	c.subs[name] = s
	c.add(name)
	return s
}

func (c *cfg) set(key, value string) {
	c.opts[key] = value
	c.add(key)
}

// section returns the subsection at a slash-separated path, or nil.
func (c *cfg) section(path string) *cfg {
	s := c
	for _, p := range strings.Split(path, "/") {
		if s = s.subs[p]; s == nil {
			return nil
		}
	}
	return s
}

// sections lists the subsection names in file order.
func (c *cfg) sections() []string {
	var out []string
	for _, n := range c.names {
		if _, ok := c.subs[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// parseCfg reads CFG text; name is for errors.
func parseCfg(name, text string) (*cfg, error) {
	root := newCfg()
	stack := []*cfg{root}
	cur := root
	pending := ""
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
	scan:
		for j := 0; j < len(line); j++ {
			switch {
			case line[j] == '{':
				cur = cur.sub(strings.TrimSpace(pending))
				stack = append(stack, cur)
				pending = ""
			case line[j] == '}':
				if len(stack) == 1 {
					return nil, fmt.Errorf("%s:%d: '}' closes more sections than were opened", name, i+1)
				}
				stack = stack[:len(stack)-1]
				cur = stack[len(stack)-1]
			case line[j] == '=':
				k, v, _ := strings.Cut(line, "=")
				cur.set(strings.TrimSpace(k), strings.TrimSpace(v))
				pending = ""
				break scan
			case strings.HasPrefix(line[j:], "+="):
				k, v, _ := strings.Cut(line, "+=")
				k = strings.TrimSpace(k)
				if old, ok := cur.opts[k]; ok {
					cur.set(k, old+", "+strings.TrimSpace(v))
				} else {
					cur.set(k, ", "+strings.TrimSpace(v))
				}
				pending = ""
				break scan
			default:
				pending += string(line[j])
			}
		}
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("%s: %d section(s) not closed", name, len(stack)-1)
	}
	return root, nil
}

// mergeCfg lays over on top of base, as diraccfg's CFG.mergeWith does:
// over's options win, sections merge recursively, base's order first.
func mergeCfg(base, over *cfg) *cfg {
	out := newCfg()
	for _, src := range []*cfg{base, over} {
		if src == nil {
			continue
		}
		for _, n := range src.names {
			if s, ok := src.subs[n]; ok {
				out.subs[n] = mergeCfg(out.subs[n], s)
				out.add(n)
			} else {
				out.set(n, src.opts[n])
			}
		}
	}
	return out
}

// flatten lists every option under c as "Sub/Key" = value, in file order.
func (c *cfg) flatten(prefix string, out *[][2]string) {
	for _, n := range c.names {
		if s, ok := c.subs[n]; ok {
			s.flatten(prefix+n+"/", out)
		} else {
			*out = append(*out, [2]string{prefix + n, c.opts[n]})
		}
	}
}

// String writes the section in CFG syntax, in order.
func (c *cfg) String() string {
	var b strings.Builder
	c.write(&b, "")
	return b.String()
}

func (c *cfg) write(b *strings.Builder, indent string) {
	for _, n := range c.names {
		if s, ok := c.subs[n]; ok {
			fmt.Fprintf(b, "%s%s\n%s{\n", indent, n, indent)
			s.write(b, indent+"  ")
			fmt.Fprintf(b, "%s}\n", indent)
		} else {
			fmt.Fprintf(b, "%s%s = %s\n", indent, n, c.opts[n])
		}
	}
}

// setPath sets an option at a slash-separated path, making the sections.
func (c *cfg) setPath(p, value string) {
	parts := strings.Split(p, "/")
	s := c
	for _, x := range parts[:len(parts)-1] {
		s = s.sub(x)
	}
	s.set(parts[len(parts)-1], value)
}
