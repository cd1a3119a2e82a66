package dips

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxFrameLen is the largest payload a frame may carry: DIRAC's receivers
// (before v8.0.55, and v9's snapshot) look for the ':' in the first 10 bytes,
// so the length has at most 9 digits.
const MaxFrameLen = 999_999_999

// ProposalLimit is the size DIRAC servers read a proposal with; a proposal
// must stay under it.
const ProposalLimit = 1024

// ErrFrame is wrapped by every framing error.
var ErrFrame = errors.New("dips: bad frame")

// WriteFrame writes one data message: decimal length, ':', payload.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > MaxFrameLen {
		return fmt.Errorf("%w: payload of %d bytes exceeds the 9-digit length limit", ErrFrame, len(payload))
	}
	// One write: DIRAC's proposal limit only bites when a frame needs more
	// than one read, so a frame is never split by us.
	buf := make([]byte, 0, len(payload)+11)
	buf = strconv.AppendInt(buf, int64(len(payload)), 10)
	buf = append(buf, ':')
	buf = append(buf, payload...)
	_, err := w.Write(buf)
	return err
}

// writeKeepAlive writes a keep-alive frame: "dka" and a data frame.
func writeKeepAlive(w io.Writer, payload []byte) error {
	var b bytes.Buffer
	b.WriteString("dka")
	if err := WriteFrame(&b, payload); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// readFrame reads one frame. It reports whether it was a keep-alive. limit
// bounds the payload (0: MaxFrameLen). Memory grows with the bytes that
// arrive, never with the length a peer announces.
func readFrame(r *bufio.Reader, limit int) (payload []byte, keepAlive bool, err error) {
	if limit <= 0 {
		limit = MaxFrameLen
	}
	if head, err := r.Peek(3); err == nil && string(head) == "dka" {
		r.Discard(3)
		keepAlive = true
	} else if err != nil && len(head) == 0 {
		return nil, false, err // nothing at all: the peer closed
	}
	var n int
	digits := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, keepAlive, fmt.Errorf("%w: stream ended in the length prefix: %v", ErrFrame, noEOF(err))
		}
		if c == ':' {
			break
		}
		if c < '0' || c > '9' {
			return nil, keepAlive, fmt.Errorf("%w: byte %q in the length prefix", ErrFrame, c)
		}
		digits++
		if digits > 9 {
			return nil, keepAlive, fmt.Errorf("%w: length prefix longer than 9 digits", ErrFrame)
		}
		n = n*10 + int(c-'0')
	}
	if digits == 0 {
		return nil, keepAlive, fmt.Errorf("%w: empty length prefix", ErrFrame)
	}
	if n > limit {
		return nil, keepAlive, fmt.Errorf("%w: frame of %d bytes exceeds the read limit of %d", ErrFrame, n, limit)
	}
	var buf bytes.Buffer
	got, err := io.CopyN(&buf, r, int64(n))
	if err != nil {
		return nil, keepAlive, fmt.Errorf("%w: stream ended after %d of %d payload bytes: %v", ErrFrame, got, n, noEOF(err))
	}
	return buf.Bytes(), keepAlive, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
