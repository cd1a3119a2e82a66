package marathontest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// validate applies Marathon's validation to a definition about to be
// stored, and answers 422 with details as Marathon does (reference §1.3:
// `{"message":"Object is not valid","details":[{"path":…,"errors":[…]}]}`).
// Marathon itself accepts null for an absent field, as go-marathon sends
// them (reference §2.3).
func (s *Server) validate(w http.ResponseWriter, def map[string]any) bool {
	var problems []map[string]any
	bad := func(path, msg string) {
		problems = append(problems, map[string]any{"path": path, "errors": []string{msg}})
	}
	id, _ := def["id"].(string)
	if !appIDPattern.MatchString(id) {
		bad("/id", "must match the path id pattern (lower case, digits, '-', '.'; a segment neither begins nor ends with '-')")
	}
	if segs := strings.Split(id, "/"); len(segs) > 0 {
		switch segs[len(segs)-1] {
		case "restart", "tasks", "versions":
			// The last segment would name a sub-resource of /v2/apps/{id}
			// (reference §1.3, §1.5: …/restart, …/versions).
			bad("/id", "must not end with any of the following reserved keywords: restart, tasks, versions, ., ..")
		}
	}
	// The schema's top-level "not": {"allOf": [required cmd, required args]}.
	if def["cmd"] != nil && def["args"] != nil {
		bad("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.")
	}
	for _, k := range []string{"cpus", "mem", "disk", "instances"} {
		if n, ok := def[k].(json.Number); ok {
			if f, err := n.Float64(); err != nil || f < 0 {
				bad("/"+k, "got "+n.String()+", expected 0 or more")
			}
		} else if def[k] != nil {
			bad("/"+k, "must be a number")
		}
	}
	if cs, ok := def["constraints"].([]any); ok {
		for i, c := range cs {
			if err := checkConstraint(c); err != nil {
				bad(fmt.Sprintf("/constraints(%d)", i), err.Error())
			}
		}
	}
	if c, ok := def["container"].(map[string]any); ok && c["type"] == "DOCKER" {
		if img, _ := dig(c, "docker", "image").(string); img == "" {
			bad("/container/docker/image", "must not be empty")
		}
	}
	if len(problems) == 0 {
		return true
	}
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid", "details": problems})
	return false
}

// appIDPattern is the schema's pathType for an absolute id: segments of
// lower-case letters, digits, '-' and '.' (reference §1.2; the stand-in
// takes ids absolute, as the deploy sends them).
var appIDPattern = regexp.MustCompile(`^(/[a-z0-9]([a-z0-9.-]*[a-z0-9])?)+$`)

// constraintOperators are the schema's (properties.constraints: "Valid
// constraint operators are one of UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE,
// MAX_PER, IS").
var constraintOperators = []string{"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}

// mesosLiteral is what IS compares with: a Mesos text or scalar value.
var mesosLiteral = regexp.MustCompile(`^[a-zA-Z0-9_/.-]*$`)

// checkConstraint is one constraint's validation. Its shape is the
// schema's: an array of two or three strings, [field, operator] or
// [field, operator, value], the operator one of constraintOperators.
// What each operator does with its value is not in the reference; the
// rules and their messages are Marathon 1.10's SchedulingValidation, as
// read in its sources: UNIQUE takes no value (an empty one, as
// examples/app_list.json shows it, is none), GROUP_BY an optional and
// MAX_PER a required integer, LIKE and UNLIKE a regular expression, IS a
// Mesos literal.
func checkConstraint(c any) error {
	l, ok := c.([]any)
	if !ok || len(l) < 2 || len(l) > 3 {
		return fmt.Errorf("each constraint must have either 2 or 3 fields: [field, operator] or [field, operator, value]")
	}
	f := make([]string, len(l))
	for i, e := range l {
		if f[i], ok = e.(string); !ok {
			return fmt.Errorf("constraint fields must be strings")
		}
	}
	if f[0] == "" {
		return fmt.Errorf("missing field for constraint declaration")
	}
	value, hasValue := "", len(f) == 3
	if hasValue {
		value = f[2]
	}
	isInt := func(s string) bool { _, err := strconv.ParseInt(s, 10, 32); return err == nil }
	switch op := strings.ToUpper(f[1]); op {
	case "UNIQUE":
		// An empty value is no value: a documented answer holds
		// ["hostname", "UNIQUE", ""] (examples/app_list.json).
		if value != "" {
			return fmt.Errorf("UNIQUE does not accept a value")
		}
	case "CLUSTER":
	case "GROUP_BY":
		if hasValue && !isInt(value) {
			return fmt.Errorf("GROUP BY must define an integer value or else no value at all")
		}
	case "MAX_PER":
		if !hasValue || !isInt(value) {
			return fmt.Errorf("MAX_PER requires an integer value")
		}
	case "LIKE", "UNLIKE":
		if value == "" {
			return fmt.Errorf("LIKE and UNLIKE require a non-empty, regular expression value")
		}
		if _, err := regexp.Compile(value); err != nil {
			return fmt.Errorf("%q is not a valid regular expression", value)
		}
	case "IS":
		if !mesosLiteral.MatchString(value) {
			return fmt.Errorf("IS only supports Mesos text and float values")
		}
	default:
		return fmt.Errorf("operator must be one of the following %s", strings.Join(constraintOperators, ", "))
	}
	return nil
}
