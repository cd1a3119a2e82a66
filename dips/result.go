package dips

import (
	"fmt"
)

// ENOAUTH is DIRAC's errno for "Unauthorized query".
const ENOAUTH = 1111

// dErrno holds the DIRAC error strings the protocol uses.
var dErrno = map[int]string{ENOAUTH: "Unauthorized query"}

// OK builds S_OK(v): {"OK": True, "Value": v}.
func OK(v any) *Dict { return NewDict("OK", true, "Value", v) }

// Error builds S_ERROR(errno, msg) as DIRAC does, message rewritten to
// "<strerror> ( <errno> : <msg>)" when errno is set, with an empty CallStack.
func Error(errno int, msg string) *Dict {
	if errno != 0 {
		str, ok := dErrno[errno]
		if !ok {
			str = "Unknown error"
		}
		msg = fmt.Sprintf("%s ( %d : %s)", str, errno, msg)
	}
	return NewDict("OK", false, "Errno", int64(errno), "Message", msg, "CallStack", []any{})
}

// Result is a decoded S_OK/S_ERROR structure.
type Result struct {
	OK      bool
	Value   any
	Errno   int
	Message string
}

// ParseResult checks a decoded message the way DIRAC's isReturnStructure
// does: a dict with a bool OK, then Value when OK or Message when not. Extra
// keys are ignored.
func ParseResult(v any) (Result, error) {
	d, ok := v.(*Dict)
	if !ok {
		return Result{}, fmt.Errorf("%w: message is a %s, not an S_OK/S_ERROR dict", ErrDecode, typeName(v))
	}
	okv, has := d.Get("OK")
	b, isBool := okv.(bool)
	if !has || !isBool {
		return Result{}, fmt.Errorf("%w: message has no boolean OK key", ErrDecode)
	}
	if b {
		val, has := d.Get("Value")
		if !has {
			return Result{}, fmt.Errorf("%w: S_OK without Value", ErrDecode)
		}
		return Result{OK: true, Value: val}, nil
	}
	msg, has := d.Get("Message")
	if !has {
		return Result{}, fmt.Errorf("%w: S_ERROR without Message", ErrDecode)
	}
	r := Result{Message: fmt.Sprint(msg)}
	if s, ok := msg.(string); ok {
		r.Message = s
	}
	if e, ok := d.Get("Errno"); ok {
		if n, ok := Int(e); ok {
			r.Errno = int(n)
		}
	}
	return r, nil
}
