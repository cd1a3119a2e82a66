package pep508

import (
	"strings"
	"testing"
)

// cpython311 is the lhcbdirac image's environment.
var cpython311 = Env{Series: "3.11", Values: map[string]string{
	"python_version": "3.11", "os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
	"platform_machine": "x86_64", "platform_python_implementation": "CPython", "implementation_name": "cpython",
}}

func TestNames(t *testing.T) {
	for _, ok := range []string{"a", "LHCbDIRAC", "setuptools_scm", "zope.interface", "m2crypto", "a-b_c.d", "9"} {
		if !ValidName(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "a b", "a[b]", "a@b", "é", "a\x00", ".a", strings.Repeat("a", 201)} {
		if ValidName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	for in, want := range map[string]string{"LHCbDIRAC": "lhcbdirac", "setuptools_scm": "setuptools-scm", "Zope..Interface": "zope-interface", "a-_.b": "a-b"} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q", in, got)
		}
	}
}

func TestEvaluate(t *testing.T) {
	for marker, want := range map[string]bool{
		`python_version < "3.8"`:                                                       false,
		`python_version >= '3.8'`:                                                      true,
		`python_version>='3.8'and sys_platform=="linux"`:                               true,
		`python_full_version < '3.15'`:                                                 true,
		`python_full_version >= '3.11'`:                                                true,
		`python_full_version < '3.11.0'`:                                               false,
		`python_full_version == '3.11.*'`:                                              true,
		`'3.12' > python_full_version`:                                                 true,
		`implementation_name == 'cpython' and platform_machine == 'x86_64'`:            true,
		`sys_platform == 'win32' or sys_platform == 'darwin'`:                          false,
		`sys_platform == 'win32' or (os_name == 'posix' and python_version == '3.11')`: true,
		`'linux' in sys_platform`:                                                      true,
		`'win' not in sys_platform`:                                                    true,
		`platform_python_implementation != 'PyPy'`:                                     true,
		`python_version == '3.11' and python_full_version >= '3.9'`:                    true,
	} {
		m, err := ParseMarker(marker)
		if err != nil {
			t.Errorf("%s: %v", marker, err)
			continue
		}
		got, err := m.Evaluate(cpython311)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", marker, got, err, want)
		}
		again, err := ParseMarker(m.String())
		if err != nil || again.String() != m.String() {
			t.Errorf("%s: its normal form %q does not read back: %v", marker, m, err)
		}
	}
	for marker, want := range map[string]string{
		`python_full_version >= '3.11.2'`:                    "depends on which 3.11 release",
		`python_full_version == '3.11.7'`:                    "depends on which 3.11 release",
		`python_full_version != '3.11.0'`:                    "depends on which 3.11 release",
		`'3.11.4' < python_full_version`:                     "depends on which 3.11 release",
		`python_full_version ~= '3.11.1'`:                    "depends on which 3.11 release",
		`python_full_version == '3.11.2.*'`:                  "depends on which 3.11 release",
		`python_full_version < '3.11.1rc1'`:                  "depends on which 3.11 release",
		`implementation_version >= '3.11.3'`:                 "depends on which 3.11 release",
		`'3.11.1' in python_full_version`:                    "compares text",
		`platform_release >= '5.0'`:                          "platform_release, which the target does not fix",
		`platform_version == 'x'`:                            "platform_version, which the target does not fix",
		`extra == 'server'`:                                  "extra",
		`os_name ~= 'posix'`:                                 "compares versions",
		`os_name == '1.0'`:                                   `"posix" is not a version`,
		`python_version < '3.8' and platform_release == 'x'`: "platform_release",
	} {
		m, err := ParseMarker(marker)
		if err != nil {
			t.Errorf("%s: %v", marker, err)
			continue
		}
		if got, err := m.Evaluate(cpython311); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v %v, want an error %q", marker, got, err, want)
		}
	}
}

func TestParseMarkerRefuses(t *testing.T) {
	for marker, want := range map[string]string{
		``:                                               "want a variable",
		`python_version`:                                 "want a comparison operator",
		`python_version = '3'`:                           "want a comparison operator",
		`python_version <> '3'`:                          "want a variable",
		`os.name == 'posix'`:                             "not a marker variable",
		`python_implementation == 'CPython'`:             "not a marker variable",
		`sys_platform == 'linux`:                         "not a quoted string",
		`sys_platform == "li\\nux"`:                      "not a quoted string",
		"sys_platform == 'li\x00nux'":                    "not a quoted string",
		"sys_platform == 'línux'":                        "not a quoted string",
		`(sys_platform == 'linux'`:                       "want )",
		`sys_platform == 'linux')`:                       "unexpected",
		`sys_platform == 'linux' and`:                    "want a variable",
		`sys_platform == 'linux' xor os_name == 'posix'`: "unexpected",
		`sys_platform not 'linux'`:                       "want in after not",
		strings.Repeat("(", 40) + `os_name == 'posix'` + strings.Repeat(")", 40): "nested parentheses",
		strings.Repeat("os_name == 'posix' and ", 60) + "os_name == 'posix'":     "longer than",
	} {
		if m, err := ParseMarker(marker); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v %v, want %q", marker, m, err, want)
		}
	}
}

func TestNormalForm(t *testing.T) {
	for in, want := range map[string]string{
		`python_version>="3.8"`: `python_version >= '3.8'`,
		`os_name=="posix"  and(sys_platform=='linux' or   sys_platform=="darwin")`: `os_name == 'posix' and (sys_platform == 'linux' or sys_platform == 'darwin')`,
		`platform_machine == "it's"`: `platform_machine == "it's"`,
		`'linux'in sys_platform`:     `'linux' in sys_platform`,
	} {
		m, err := ParseMarker(in)
		if err != nil || m.String() != want {
			t.Errorf("%s: %q %v, want %q", in, m, err, want)
		}
	}
}

// FuzzMarker: no marker makes the parser or the evaluation panic, and what
// is accepted reads back as itself.
func FuzzMarker(f *testing.F) {
	for _, s := range []string{`python_version < "3.8"`, `python_full_version >= '3.11.2'`, `(os_name == 'posix' or 'a' in sys_platform) and python_version ~= '3.1'`, `python_full_version == '3.11.*'`, `implementation_version === '3.11.0'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMarker(s)
		if err != nil {
			return
		}
		again, err := ParseMarker(m.String())
		if err != nil || again.String() != m.String() {
			t.Fatalf("%q: normal form %q does not read back: %v", s, m, err)
		}
		a, errA := m.Evaluate(cpython311)
		b, errB := again.Evaluate(cpython311)
		if a != b || (errA == nil) != (errB == nil) {
			t.Fatalf("%q and its normal form evaluate differently: %v %v / %v %v", s, a, errA, b, errB)
		}
	})
}
