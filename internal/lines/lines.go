// Package lines cuts a program's output down to what an error or a report
// shows of it: its last lines, where a failure says why.
package lines

import "strings"

// Last are the last n lines of s (a trailing newline is not a line);
// none for an empty s.
func Last(s string, n int) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" || n <= 0 {
		return nil
	}
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return l
}

// Tail is Last joined again: the last n lines of s, as one string.
func Tail(s string, n int) string { return strings.Join(Last(s, n), "\n") }
