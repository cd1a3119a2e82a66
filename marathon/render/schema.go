package render

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed app.schema.json
var appSchema []byte

// Schema validates app definitions.
type Schema struct {
	name string
	s    *jsonschema.Schema
}

// DefaultSchema is the embedded app schema.
func DefaultSchema() (*Schema, error) { return CompileSchema("app.schema.json", appSchema) }

// LoadSchemaFile compiles a schema file, e.g. Marathon's AppDefinition.json.
func LoadSchemaFile(path string) (*Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return CompileSchema(path, b)
}

// CompileSchema compiles a JSON schema (draft 4, as Marathon's own is). Its
// $schema is ignored: Marathon's file names the unversioned meta-schema.
func CompileSchema(name string, b []byte) (*Schema, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	delete(doc, "$schema")
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	// The resource needs a URL of its own for "#/definitions/…" references;
	// the display name is only for messages.
	const url = "urn:lhcbdirac-pipeline:app-schema"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	return &Schema{name: name, s: s}, nil
}

// Validate checks a decoded document (decoded with UseNumber) and returns
// one line per violation, each naming the JSON path.
func (s *Schema) Validate(doc any) error {
	err := s.s.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var lines []string
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil || u.InstanceLocation == "" && len(ve.Causes) > 0 && u.KeywordLocation == "" {
			continue
		}
		msg := u.Error.String()
		if strings.HasPrefix(msg, "validation failed") {
			continue
		}
		loc := u.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		lines = append(lines, fmt.Sprintf("%s: %s", loc, msg))
	}
	sort.Strings(lines)
	lines = compact(lines)
	if len(lines) == 0 {
		lines = []string{ve.Error()}
	}
	return fmt.Errorf("rejected by %s:\n  %s", s.name, strings.Join(lines, "\n  "))
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
