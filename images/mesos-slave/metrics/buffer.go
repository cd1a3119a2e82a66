package metrics

import (
	"bytes"
	"context"
	"errors"
	"sync"
)

// Buffer holds encoded points until InfluxDB takes them: bounded in points
// and in bytes, the oldest dropped first (and counted) when either bound is
// reached, so a long outage costs the oldest points, never memory without
// end.
type Buffer struct {
	Max      int   // points; default 200000
	MaxBytes int64 // bytes of line protocol; default 64 MiB

	mu       sync.Mutex
	lines    [][]byte
	size     int64  // bytes in lines
	head     uint64 // sequence number of lines[0]
	dropped  uint64 // points dropped because the buffer was full
	refused  uint64 // points InfluxDB refused
	batchMax int64  // bytes per write (default maxBatchBytes); tests lower it
}

// Defaults of the buffer's bounds and of a write's size (InfluxDB 1.x
// refuses bodies over 25 MB by default).
const (
	defaultBufferPoints = 200000
	defaultBufferBytes  = 64 << 20
	maxBatchBytes       = 4 << 20
)

// Add queues encoded lines (one point each).
func (b *Buffer) Add(lines [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	maxPoints, maxBytes := b.Max, b.MaxBytes
	if maxPoints <= 0 {
		maxPoints = defaultBufferPoints
	}
	if maxBytes <= 0 {
		maxBytes = defaultBufferBytes
	}
	b.lines = append(b.lines, lines...)
	for _, l := range lines {
		b.size += int64(len(l))
	}
	over, size := max(len(b.lines)-maxPoints, 0), b.size
	for _, l := range b.lines[:over] {
		size -= int64(len(l))
	}
	for over < len(b.lines) && size > maxBytes {
		size -= int64(len(b.lines[over]))
		over++
	}
	b.dropped += uint64(over)
	b.removeFront(over)
}

// removeFront removes the n oldest lines (the caller holds mu).
func (b *Buffer) removeFront(n int) {
	n = min(n, len(b.lines))
	for i := range n {
		b.size -= int64(len(b.lines[i]))
		b.lines[i] = nil // let the bytes go now, not at the next reallocation
	}
	b.lines = b.lines[n:]
	b.head += uint64(n)
	if len(b.lines) == 0 {
		b.lines = nil
	}
}

// Len is the points waiting.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lines)
}

// Size is the bytes waiting.
func (b *Buffer) Size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// Dropped counts the points dropped because the buffer was full.
func (b *Buffer) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// Refused counts the points InfluxDB refused.
func (b *Buffer) Refused() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refused
}

// Flush writes the buffer to InfluxDB, oldest first, in batches of at most
// batch points (and 4 MiB); a point leaves the buffer once InfluxDB took
// it, or refused it. When InfluxDB refuses points of a batch (a 400: a
// field type conflict, a line it cannot parse), the batch is split in two
// and each half sent again, down to the single points it refuses: those
// are dropped, counted and handed to refused (which may be nil); the rest
// of the batch, and the batches behind it, are written. Any other failure
// (InfluxDB away, a 5xx, bad credentials) stops the flush and keeps the
// points for the next one.
func (b *Buffer) Flush(ctx context.Context, w *Writer, batch int, refused func(line []byte, why *WriteError)) (written int, err error) {
	batch = max(batch, 1)
	for {
		b.mu.Lock()
		bytesMax := b.batchMax
		if bytesMax <= 0 {
			bytesMax = maxBatchBytes
		}
		n, size := 0, int64(0)
		for n < len(b.lines) && n < batch && (n == 0 || size+int64(len(b.lines[n])) <= bytesMax) {
			size += int64(len(b.lines[n]))
			n++
		}
		chunk := append([][]byte(nil), b.lines[:n]...)
		start := b.head
		b.mu.Unlock()
		if n == 0 {
			return written, nil
		}
		done, sent, err := b.send(ctx, w, chunk, refused)
		written += sent
		b.mu.Lock()
		// Points dropped meanwhile (the buffer full) moved the head: remove
		// only what is still there of what was done.
		if end := start + uint64(done); end > b.head {
			b.removeFront(int(end - b.head))
		}
		b.mu.Unlock()
		if err != nil {
			return written, err
		}
	}
}

// send writes lines, bisecting on refusals. It returns how many leading
// lines are done (written or refused) and how many were written; on an
// error other than a refusal, the lines from done on are not.
func (b *Buffer) send(ctx context.Context, w *Writer, lines [][]byte, refused func([]byte, *WriteError)) (done, written int, err error) {
	err = w.Write(ctx, bytes.Join(lines, nil))
	if err == nil {
		return len(lines), len(lines), nil
	}
	var we *WriteError
	if !errors.As(err, &we) || !we.Refused() {
		return 0, 0, err
	}
	// InfluxDB's count says it dropped every point: no need to look for
	// the ones it took.
	if len(lines) == 1 || we.Dropped == len(lines) {
		b.mu.Lock()
		b.refused += uint64(len(lines))
		b.mu.Unlock()
		if refused != nil {
			for _, l := range lines {
				refused(l, we)
			}
		}
		return len(lines), 0, nil
	}
	// InfluxDB 1.x wrote the points it could take already; sending them
	// again in the halves writes the same values at the same times.
	half := len(lines) / 2
	d1, w1, err := b.send(ctx, w, lines[:half], refused)
	if err != nil {
		return d1, w1, err
	}
	d2, w2, err := b.send(ctx, w, lines[half:], refused)
	return d1 + d2, w1 + w2, err
}
