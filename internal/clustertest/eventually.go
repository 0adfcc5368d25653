package clustertest

import (
	"strconv"
	"testing"
	"time"
)

// Eventually calls check until it returns "" (no difference) or timeout
// passes, and then fails the test with the last difference. check is
// typically a cmp.Diff of wanted and observed state; it runs on the test's
// goroutine and may fail the test itself on transport errors. Polling starts
// at 50ms and backs off to 1s.
func Eventually(t testing.TB, check func() (diff string), timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 50 * time.Millisecond
	attempts := 0
	for {
		attempts++
		diff := check()
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v (%d attempts); last difference:\n%s", timeout, attempts, Truncate(diff, 8000))
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// Truncate shortens s to at most n bytes, saying how much it cut, so that a
// failing diff of a large result stays readable.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n... (" + strconv.Itoa(len(s)-n) + " more bytes)"
}
