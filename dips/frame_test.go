package dips

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestFrameRoundTripAndLimits(t *testing.T) {
	var b bytes.Buffer
	WriteFrame(&b, []byte("ds2:OKb1s5:Valuene"))
	if b.String() != "18:ds2:OKb1s5:Valuene" {
		t.Fatalf("frame %q", b.String())
	}
	for name, tc := range map[string]struct {
		in    string
		limit int
		want  string
	}{
		"ten digits":        {"1234567890:x", 0, "longer than 9 digits"},
		"letters in length": {"1a:xx", 0, "in the length prefix"},
		"empty length":      {":x", 0, "empty length prefix"},
		"truncated prefix":  {"12", 0, "ended in the length prefix"},
		"truncated payload": {"10:abc", 0, "after 3 of 10"},
		"over limit":        {"2000:" + strings.Repeat("x", 2000), ProposalLimit, "exceeds the read limit"},
	} {
		_, _, err := readFrame(bufio.NewReader(strings.NewReader(tc.in)), tc.limit)
		if !errors.Is(err, ErrFrame) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrFrame mentioning %q", name, err, tc.want)
		}
	}
	if err := WriteFrame(io.Discard, make([]byte, MaxFrameLen+1)); !errors.Is(err, ErrFrame) {
		t.Errorf("a payload over 9 digits must be refused, got %v", err)
	}
}

// A 9-digit length followed by nothing must not allocate the announced
// gigabyte: memory follows the bytes that arrive.
func TestAnnouncedLengthDoesNotAllocate(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := readFrame(bufio.NewReader(strings.NewReader("999999999:abc")), 0)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("truncated frame accepted")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading a truncated 999999999-byte frame allocated %d bytes", grew)
	}
}

// The peer sends a keep-alive PING before its answer and a PONG after: the
// PING is answered with a PONG carrying the same id, both are invisible to
// the caller.
func TestKeepAlivesAreAnsweredAndSwallowed(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	b.SetDeadline(time.Now().Add(5 * time.Second))
	peer := NewConn(b, false)
	done := make(chan error, 1)
	go func() {
		if err := peer.SendKeepAlive("afd9aaf0-7"); err != nil {
			done <- err
			return
		}
		// read the PONG as raw bytes to check its exact shape
		r := bufio.NewReader(b)
		payload, ka, err := readFrame(r, 0)
		if err != nil || !ka {
			done <- errors.New("no keep-alive reply")
			return
		}
		v, _, _ := Decode(payload)
		val, _ := v.(*Dict).Get("Value")
		id, _ := val.(*Dict).Get("id")
		kaping, _ := val.(*Dict).Get("kaping")
		if id != "afd9aaf0-7" || kaping != false {
			done <- errors.New("pong has the wrong id or flag")
			return
		}
		pong, _ := Encode(OK(NewDict("id", "x", "kaping", false)))
		writeKeepAlive(b, pong) // a stray PONG
		done <- peer.Send(OK("answer"))
	}()
	got, err := NewConn(a, false).Receive(0)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := ParseResult(got); r.Value != "answer" {
		t.Fatalf("got %#v", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDecoderErrorsNotPanics(t *testing.T) {
	for _, in := range []string{"", "x", "l", "d", "di1e", "dli1eei1ee", "s-1:", "s99999999999999999999:x",
		"zati1ei2ee", "zati2024ei13ei1ei0ei0ei0ei0ene", "zxi1e", "f1e+e", "i1.5e", strings.Repeat("l", 100000)} {
		if _, _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%q decoded without error", clip(in))
		}
	}
}

func TestFormatFloatMatchesPython(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 1: "1.0", 1e16: "1e+16", 1e15: "1000000000000000.0", 1e-4: "0.0001", 1e-5: "1e-05",
		1.5e300: "1.5e+300", -2.5e-7: "-2.5e-07", 123456789.125: "123456789.125",
	} {
		if got := FormatFloat(f); got != want {
			t.Errorf("FormatFloat(%v) = %s, Python writes %s", f, got, want)
		}
	}
}
