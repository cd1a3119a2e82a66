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
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
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
// Items may be read freely; add entries with Set, which keeps an index so
// that building a dict of n keys costs O(n), not O(n²).
type Dict struct {
	Items []KV
	index map[uint64]int32 // key hash → the last position with that hash, once the dict grows
	chain []int32          // per position: the previous one with the same hash, or -1
	seed  maphash.Seed
}

// indexFrom is the size at which a dict starts keeping an index: below it
// a scan is cheaper than hashing.
const indexFrom = 16

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
	if i, ok := d.find(k); ok {
		d.Items[i].Value = v
		return
	}
	d.Items = append(d.Items, KV{k, v})
	if d.index != nil && len(d.chain) == len(d.Items)-1 {
		d.link(len(d.Items) - 1)
	}
}

// link enters position i in the index.
func (d *Dict) link(i int) {
	h, ok := d.hash(d.Items[i].Key)
	if !ok {
		d.chain = append(d.chain, -1) // NaN and the like: never found
		return
	}
	prev, found := d.index[h]
	if !found {
		prev = -1
	}
	d.chain = append(d.chain, prev)
	d.index[h] = int32(i)
}

// Get returns the value of a key.
func (d *Dict) Get(k any) (any, bool) {
	if d == nil {
		return nil, false
	}
	if i, ok := d.find(k); ok {
		return d.Items[i].Value, true
	}
	return nil, false
}

// find locates a key: by scanning while the dict is small, then through
// the index (rebuilt if Items was changed other than by Set).
func (d *Dict) find(k any) (int, bool) {
	if len(d.Items) < indexFrom {
		for i := range d.Items {
			if keyEqual(d.Items[i].Key, k) {
				return i, true
			}
		}
		return 0, false
	}
	if d.index == nil || len(d.chain) != len(d.Items) {
		d.reindex() // first use, or Items changed other than by Set
	}
	h, ok := d.hash(k)
	if !ok { // NaN, and tuples holding one, equal nothing
		return 0, false
	}
	i, found := d.index[h]
	for found && i >= 0 {
		if int(i) < len(d.Items) && keyEqual(d.Items[i].Key, k) {
			return int(i), true
		}
		i = d.chain[i]
	}
	return 0, false
}

func (d *Dict) reindex() {
	d.seed = maphash.MakeSeed()
	d.index = make(map[uint64]int32, cap(d.Items))
	d.chain = make([]int32, 0, cap(d.Items))
	for i := range d.Items {
		d.link(i)
	}
}

func (d *Dict) hash(k any) (uint64, bool) {
	var h maphash.Hash
	h.SetSeed(d.seed)
	if !hashKey(&h, k) {
		return 0, false
	}
	return h.Sum64(), true
}

// hashKey writes a key's identity under keyEqual — a type tag and the
// value — in time linear in the key. NaN has none: it equals nothing.
func hashKey(h *maphash.Hash, k any) bool {
	var buf [9]byte
	num := func(tag byte, u uint64) {
		buf[0] = tag
		binary.LittleEndian.PutUint64(buf[1:], u)
		h.Write(buf[:])
	}
	switch x := k.(type) {
	case nil:
		h.WriteByte('n')
	case bool:
		if x {
			h.WriteByte('T')
		} else {
			h.WriteByte('F')
		}
	case int64:
		num('i', uint64(x))
	case *big.Int:
		h.WriteByte('I')
		h.Write(x.Bytes())
		h.WriteByte(byte(x.Sign() + 1))
	case float64:
		if x != x {
			return false
		}
		if x == 0 {
			x = 0 // -0 == 0
		}
		num('f', math.Float64bits(x))
	case string:
		num('s', uint64(len(x)))
		h.WriteString(x)
	case Date:
		num('d', uint64(x.Year)<<32|uint64(x.Month)<<8|uint64(x.Day))
	case TimeOfDay:
		num('t', uint64(x.Hour)<<48|uint64(x.Minute)<<40|uint64(x.Second)<<32|uint64(x.Microsecond))
	case time.Time:
		num('z', uint64(x.UnixNano()))
	case Tuple:
		num('(', uint64(len(x)))
		for _, e := range x {
			if !hashKey(h, e) {
				return false
			}
		}
	default:
		return false
	}
	return true
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
