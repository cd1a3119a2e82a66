package services

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Marathon's own validation of what the services file turns into, so a
// file Marathon would answer 422 for is refused here, with its line. The
// rules and messages follow Marathon 1.10: SchedulingValidation
// (complyWithAppConstraintRules, complyWithConstraintRules) and PathId's
// reserved keywords.

// mesosLiteralOrFloat is the value IS accepts: a Mesos text or scalar.
var mesosLiteralOrFloat = regexp.MustCompile(`^[a-zA-Z0-9_/.-]*$`)

// CheckConstraint applies Marathon's rules to one constraint.
func CheckConstraint(c []string) error {
	if len(c) < 2 || len(c) > 3 {
		return fmt.Errorf("each constraint must have either 2 or 3 fields: [field, operator] or [field, operator, value]")
	}
	if c[0] == "" {
		return fmt.Errorf("missing field for constraint declaration")
	}
	value, hasValue := "", len(c) == 3
	if hasValue {
		value = c[2]
	}
	switch strings.ToUpper(c[1]) {
	case "UNIQUE":
		if hasValue {
			return fmt.Errorf("UNIQUE does not accept a value")
		}
	case "CLUSTER": // the value is optional
	case "GROUP_BY":
		if hasValue && !javaInt(value) {
			return fmt.Errorf("GROUP BY must define an integer value or else no value at all")
		}
	case "MAX_PER":
		if !hasValue || !javaInt(value) {
			return fmt.Errorf("MAX_PER requires an integer value")
		}
	case "LIKE", "UNLIKE":
		if !hasValue || value == "" {
			return fmt.Errorf("LIKE and UNLIKE require a non-empty, regular expression value")
		}
		// Marathon compiles Java regular expressions; Go's RE2 refuses a
		// few Java-only constructs (lookaround, backreferences), which
		// are refused here too rather than guessed at.
		if _, err := regexp.Compile(value); err != nil {
			return fmt.Errorf("%q is not a valid regular expression: %v", value, err)
		}
	case "IS":
		if !mesosLiteralOrFloat.MatchString(value) {
			return fmt.Errorf("IS only supports Mesos text and float values")
		}
	default:
		return fmt.Errorf("operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS")
	}
	return nil
}

// javaInt is Java's Integer.parseInt accepting the text.
func javaInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 32)
	return err == nil
}

// reservedIDKeywords may not end an app id (Marathon's PathId).
var reservedIDKeywords = []string{"restart", "tasks", "versions"}

// checkAppID refuses a service whose app id Marathon would refuse.
func checkAppID(name string) error {
	_, svc, _ := strings.Cut(name, "/")
	for _, k := range reservedIDKeywords {
		if strings.EqualFold(svc, k) {
			return fmt.Errorf("the app id would end in %q, a keyword Marathon reserves (restart, tasks, versions)", strings.ToLower(svc))
		}
	}
	return nil
}
