package dips

import (
	"math"
	"strconv"
	"strings"
)

// FormatFloat writes a float as Python 3's str/repr does, which is what
// DEncode puts on the wire: the shortest round-trip digits, fixed notation
// for 1e-4 <= |x| < 1e16 (with ".0" when integral), otherwise scientific with
// an explicit exponent sign and at least two exponent digits. The explicit
// sign matters: DIRAC's decoder takes an unsigned "e" for the terminator.
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	sci := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expText, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(expText)
	if f == 0 || (exp >= -4 && exp < 16) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	e := strconv.Itoa(exp)
	if len(e) < 2 {
		e = "0" + e
	}
	return mant + "e" + sign + e
}
