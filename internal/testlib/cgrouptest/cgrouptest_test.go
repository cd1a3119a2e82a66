package cgrouptest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A window ending now is answered once the watch has read after it, not
// refused because its next 50 ms reading is still to come.
func TestBetweenWaitsForTheReadingAfterItsWindow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cpu.stat")
	if err := os.WriteFile(p, []byte("usage_usec 1000\nuser_usec 600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := StartWatch(t, &Counter{Path: p})
	time.Sleep(120 * time.Millisecond)
	for i := 0; i < 20; i++ {
		t0 := time.Now().Add(-60 * time.Millisecond)
		least, most, err := w.Between(t0, time.Now())
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if least != 0 || most != 0 {
			t.Fatalf("an unchanging counter used %s–%s", least, most)
		}
	}
	// A window the watch never reaches is still refused.
	if _, _, err := w.Between(time.Now().Add(-time.Hour), time.Now()); err == nil {
		t.Error("a window begun before the first reading was not refused")
	}
}
