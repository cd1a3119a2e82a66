// Package dips speaks DIRAC's DIPS protocol: the DEncode and JSON codecs,
// the length-prefixed framing with keep-alives, and a client for RPC calls
// (ping in particular) over TLS with X.509 host certificates or RFC 3820
// proxies. It follows shared/reference/dips-protocol.md, which describes the
// protocol from DIRAC's sources.
//
// Values map to Go as follows:
//
//	None           nil
//	bool           bool
//	int            int64, or *big.Int when it does not fit
//	float          float64
//	str / bytes    string (raw bytes; DIRAC's surrogateescape keeps them too), []byte when encoding
//	list           []any
//	tuple          Tuple
//	dict           *Dict (ordered, keys of any hashable type)
//	datetime       time.Time (naive UTC)
//	date           Date
//	time           TimeOfDay
package dips

import (
	"fmt"
	"math/big"
	"time"
)

// Tuple is a Python tuple: encoded with `t`, sent as an array in JSON.
type Tuple []any

// Date is a Python datetime.date.
type Date struct{ Year, Month, Day int }

// TimeOfDay is a Python datetime.time.
type TimeOfDay struct{ Hour, Minute, Second, Microsecond int }

// KV is one entry of a Dict.
type KV struct {
	Key   any
	Value any
}

// Dict is a Python dict: insertion-ordered, with keys of any hashable type.
type Dict struct{ Items []KV }

// NewDict builds a Dict from alternating keys and values.
func NewDict(kv ...any) *Dict {
	d := &Dict{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Set(kv[i], kv[i+1])
	}
	return d
}

// Set adds or replaces a key, keeping the first position as Python does.
func (d *Dict) Set(k, v any) {
	for i := range d.Items {
		if keyEqual(d.Items[i].Key, k) {
			d.Items[i].Value = v
			return
		}
	}
	d.Items = append(d.Items, KV{k, v})
}

// Get returns the value of a key.
func (d *Dict) Get(k any) (any, bool) {
	if d == nil {
		return nil, false
	}
	for _, kv := range d.Items {
		if keyEqual(kv.Key, k) {
			return kv.Value, true
		}
	}
	return nil, false
}

// Len is the number of entries.
func (d *Dict) Len() int {
	if d == nil {
		return 0
	}
	return len(d.Items)
}

// String returns the string value of a key, or "".
func (d *Dict) String(k string) string {
	v, _ := d.Get(k)
	s, _ := v.(string)
	return s
}

// keyEqual compares hashable keys by value (tuples element-wise).
func keyEqual(a, b any) bool {
	switch x := a.(type) {
	case Tuple:
		y, ok := b.(Tuple)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !keyEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case *big.Int:
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	if !hashable(a) || !hashable(b) {
		return false
	}
	return a == b
}

func hashable(v any) bool {
	switch v.(type) {
	case nil, bool, int64, float64, string, Date, TimeOfDay, time.Time, *big.Int, Tuple:
		return true
	}
	return false
}

// Int converts a decoded integer (int64 or *big.Int) to int64.
func Int(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	}
	return 0, false
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
