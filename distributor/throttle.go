package distributor

import (
	"sync"
	"time"
)

// warnInterval is the least time between two warnings with the same key.
const warnInterval = 10 * time.Second

// throttle lets a warning through at most once per key and interval, so that
// a failing ingester costs one log line per interval, not one per push. It is
// safe for concurrent use. Keys are few (ingester addresses).
type throttle struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time // guarded by mu
}

func newThrottle(interval time.Duration) *throttle {
	return &throttle{interval: interval, last: make(map[string]time.Time)}
}

// allow reports whether a warning with key may be logged at now, and if so
// records it.
func (t *throttle) allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[key]; ok && now.Sub(last) < t.interval {
		return false
	}
	t.last[key] = now
	return true
}

// forget drops key, an ingester that left the ring.
func (t *throttle) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, key)
}

// len is the number of keys kept.
func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.last)
}
