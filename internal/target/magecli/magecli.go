// Package magecli checks a mage command line before any target runs. Mage
// runs the words of a command line as targets one after another, so a
// stray word ("release v9.1 extra") only failed, as an unknown target,
// after the whole release it followed had run. The magefile's init calls
// Check with its targets; an unknown word or a missing argument stops
// everything at once.
package magecli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"
)

var ctxType = reflect.TypeOf((*context.Context)(nil)).Elem()

// Arity is the number of command-line arguments a target function takes:
// its parameters, less a namespace receiver (an empty struct, for method
// expressions such as Engine.Up) and context.Context.
func Arity(fn any) int {
	t := reflect.TypeOf(fn)
	n := 0
	for i := 0; i < t.NumIn(); i++ {
		in := t.In(i)
		if in == ctxType || (i == 0 && in.Kind() == reflect.Struct && in.NumField() == 0) {
			continue
		}
		n++
	}
	return n
}

// Check validates args (os.Args[1:] of the compiled magefile) against
// targets, named as mage names them ("release", "engine:up"),
// case-insensitively. Mage's own flags (-v, -l, -h, -t) are skipped; when
// listing or asking for help (listing: mage's MAGEFILE_LIST or
// MAGEFILE_HELP, which the magefile reads) nothing is checked.
func Check(args []string, targets map[string]any, listing bool) error {
	if listing {
		return nil
	}
	fs := flag.NewFlagSet("mage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var v, l, h bool
	var to time.Duration
	fs.BoolVar(&v, "v", false, "")
	fs.BoolVar(&l, "l", false, "")
	fs.BoolVar(&h, "h", false, "")
	fs.DurationVar(&to, "t", 0, "")
	if err := fs.Parse(args); err != nil || l || h {
		return nil // mage reports its own flag errors, lists, helps
	}
	arity := map[string]int{}
	var names []string
	for name, fn := range targets {
		arity[strings.ToLower(name)] = Arity(fn)
		names = append(names, name)
	}
	slices.Sort(names)
	words := fs.Args()
	for i := 0; i < len(words); {
		w := words[i]
		n, ok := arity[strings.ToLower(w)]
		if !ok {
			if i == 0 {
				return fmt.Errorf("unknown target %q (targets: %s; go run mage.go -l describes them)", w, strings.Join(names, ", "))
			}
			return fmt.Errorf("%q after %q is not a target (%s): nothing was run; quote an argument that contains spaces", w, strings.Join(words[:i], " "), strings.Join(names, ", "))
		}
		if i+1+n > len(words) {
			return fmt.Errorf("%s takes %d argument(s), got %d: nothing was run", w, n, len(words)-i-1)
		}
		i += 1 + n
	}
	return nil
}

// Options takes the "--name value" and "--name=value" options that follow
// target on the command line out of args, into the environment variables
// opts maps their names to (mage itself knows only positional arguments).
// An option it does not know, or one without a value, is an error.
func Options(args []string, target string, opts map[string]string, setenv func(string, string) error) ([]string, error) {
	out := make([]string, 0, len(args))
	in := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.EqualFold(a, target) {
			in = true
			out = append(out, a)
			continue
		}
		if !in || !strings.HasPrefix(a, "--") {
			out = append(out, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		env, ok := opts[name]
		if !ok {
			var known []string
			for k := range opts {
				known = append(known, "--"+k)
			}
			slices.Sort(known)
			return nil, fmt.Errorf("%s: unknown option %s (have %s)", target, a, strings.Join(known, ", "))
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%s: %s needs a value", target, a)
			}
			i++
			val = args[i]
		}
		if err := setenv(env, val); err != nil {
			return nil, err
		}
	}
	return out, nil
}
