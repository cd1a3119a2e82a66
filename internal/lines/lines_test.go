package lines

import (
	"slices"
	"testing"
)

func TestLast(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want []string
	}{
		{"", 3, nil},
		{"\n\n", 3, nil},
		{"a", 3, []string{"a"}},
		{"a\nb\nc\nd\n", 2, []string{"c", "d"}},
		{"a\n\nb", 5, []string{"a", "", "b"}},
		{"a\nb", 0, nil},
	} {
		if got := Last(c.in, c.n); !slices.Equal(got, c.want) {
			t.Errorf("Last(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	if got := Tail("x\ny\nz\n", 2); got != "y\nz" {
		t.Errorf("Tail = %q", got)
	}
}
