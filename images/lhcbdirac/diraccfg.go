package lhcbdirac

import (
	"fmt"
	"strings"
)

// CfgSection is a section of a DIRAC CFG file (diraccfg's format: nested
// "Name { … }" sections and "Key = value" options), kept in the order
// written, for the dirac.cfg files the pipeline generates.
type CfgSection struct {
	names []string // options and sections, in order
	opts  map[string]string
	subs  map[string]*CfgSection
}

// Set sets an option.
func (s *CfgSection) Set(key, value string) {
	if s.opts == nil {
		s.opts = map[string]string{}
	}
	if _, ok := s.opts[key]; !ok {
		s.names = append(s.names, key)
	}
	s.opts[key] = value
}

// Sub returns the named subsection, creating it.
func (s *CfgSection) Sub(name string) *CfgSection {
	if s.subs == nil {
		s.subs = map[string]*CfgSection{}
	}
	if sub, ok := s.subs[name]; ok {
		return sub
	}
	sub := &CfgSection{}
	s.subs[name] = sub
	s.names = append(s.names, name)
	return sub
}

// String is the section's body in CFG syntax.
func (s *CfgSection) String() string {
	var b strings.Builder
	s.write(&b, "")
	return b.String()
}

func (s *CfgSection) write(b *strings.Builder, indent string) {
	for _, n := range s.names {
		if sub, ok := s.subs[n]; ok {
			fmt.Fprintf(b, "%s%s\n%s{\n", indent, n, indent)
			sub.write(b, indent+"  ")
			fmt.Fprintf(b, "%s}\n", indent)
		} else {
			fmt.Fprintf(b, "%s%s = %s\n", indent, n, s.opts[n])
		}
	}
}
