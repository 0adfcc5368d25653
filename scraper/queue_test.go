package scraper

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// receiver is a remote-write endpoint that records what it stores and
// answers with status() (200 when nil).
type receiver struct {
	mu     sync.Mutex
	got    []string // "tenant raw-request", in arrival order
	status func() int
}

func startReceiver(t *testing.T) (*receiver, string) {
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.status != nil {
			if code := r.status(); code != http.StatusOK {
				w.WriteHeader(code)
				return
			}
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return // the queue was stopped while sending
		}
		raw, err := snappy.Decode(nil, body)
		require.NoError(t, err)
		r.got = append(r.got, req.Header.Get("X-Scope-OrgID")+" "+string(raw))
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *receiver) setStatus(f func() int) {
	r.mu.Lock()
	r.status = f
	r.mu.Unlock()
}

func (r *receiver) stored() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// runQueue starts a queue on dir to url and runs it until the test ends or
// the returned stop is called (which does not run Stopping: as a kill).
func runQueue(t *testing.T, dir, url string, maxBytes int64) (*Queue, *prometheus.Registry, func()) {
	reg := prometheus.NewRegistry()
	q := NewQueue(QueueConfig{Dir: dir, MaxBytes: maxBytes}, NewRemoteWriter(url, 5*time.Second), nil, reg)
	require.NoError(t, q.Starting(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); require.NoError(t, q.Running(ctx)) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return q, reg, stop
}

// push queues raw (an uncompressed request) for tenant.
func push(t *testing.T, q *Queue, tenantID, raw string) {
	require.NoError(t, q.Push(context.Background(), tenantID, snappy.Encode(nil, []byte(raw))))
}

func waitStored(t *testing.T, r *receiver, want ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.stored()) >= len(want) }, 10*time.Second, 10*time.Millisecond, "stored: %q", r.stored())
	require.Equal(t, want, r.stored())
}

// TestQueue_RetriesAndSurvivesRestart queues requests while the receiver
// answers 503, stops the queue without draining (as a kill -9 leaves it)
// and starts a new one on the same directory: it sends them, in order,
// those of a tenant joined into one request, and nothing twice.
func TestQueue_RetriesAndSurvivesRestart(t *testing.T) {
	r, url := startReceiver(t)
	r.setStatus(func() int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	q, _, kill := runQueue(t, dir, url, 1<<30)
	push(t, q, "a", "one;")
	push(t, q, "b", "three;")
	push(t, q, "a", "two;")
	require.Eventually(t, func() bool { return testutil.ToFloat64(q.metrics.retries) >= 2 }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, r.stored())
	kill()
	require.Equal(t, 0.0, testutil.ToFloat64(q.metrics.sentRequests))

	r.setStatus(nil)
	q2, _, _ := runQueue(t, dir, url, 1<<30)
	waitStored(t, r, "a one;two;", "b three;")
	push(t, q2, "a", "four;")
	waitStored(t, r, "a one;two;", "b three;", "a four;")
	require.Equal(t, 4.0, testutil.ToFloat64(q2.metrics.sentRequests))
	require.Equal(t, 0.0, testutil.ToFloat64(q2.metrics.bytes))

	// A third start finds everything acknowledged.
	q2stop := func() { require.NoError(t, q2.Stopping(context.Background())) }
	q2stop()
	runQueue(t, dir, url, 1<<30)
	time.Sleep(200 * time.Millisecond)
	require.Len(t, r.stored(), 3)
}

// TestQueue_RefusedIsDropped: a 400 is not retried; the next request is
// sent.
func TestQueue_RefusedIsDropped(t *testing.T) {
	r, url := startReceiver(t)
	first := true
	r.setStatus(func() int {
		if first {
			first = false
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	q, _, _ := runQueue(t, t.TempDir(), url, 1<<30)
	push(t, q, "a", "refused;")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(q.metrics.droppedRequests.WithLabelValues("refused")) == 1
	}, 10*time.Second, 10*time.Millisecond)
	push(t, q, "a", "kept;")
	waitStored(t, r, "a kept;")
	require.Equal(t, 0.0, testutil.ToFloat64(q.metrics.retries))
}

// TestQueue_BoundDropsOldest: beyond -scraper.wal-max-bytes the oldest
// segments go; what is left is sent in order.
func TestQueue_BoundDropsOldest(t *testing.T) {
	r, url := startReceiver(t)
	r.setStatus(func() int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	const maxBytes = 256 << 10 // segments of 64 KiB
	q, _, kill := runQueue(t, dir, url, maxBytes)
	// Random bytes, which snappy cannot shrink.
	raw := make([]byte, 30<<10)
	_, _ = rand.Read(raw)
	big := string(raw)
	for range 20 {
		push(t, q, "a", big)
	}
	require.LessOrEqual(t, testutil.ToFloat64(q.metrics.bytes), float64(maxBytes))
	require.Positive(t, testutil.ToFloat64(q.metrics.droppedBytes.WithLabelValues("full")))
	kill()
	r.setStatus(nil)
	runQueue(t, dir, url, maxBytes)
	require.Eventually(t, func() bool {
		n := 0
		for _, s := range r.stored() {
			n += (len(s) - 2) / len(big)
		}
		return n >= 6
	}, 10*time.Second, 10*time.Millisecond)
}

// TestQueue_TornTail: a record cut short at the end of a segment (a
// process killed in a write) is skipped with the rest of its segment;
// the records before it are sent.
func TestQueue_TornTail(t *testing.T) {
	r, url := startReceiver(t)
	r.setStatus(func() int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	q, _, kill := runQueue(t, dir, url, 1<<30)
	push(t, q, "a", "whole;")
	kill()
	seg := segmentName(dir, 0)
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{200, 0, 0, 0, 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	r.setStatus(nil)
	q2, _, _ := runQueue(t, dir, url, 1<<30)
	push(t, q2, "a", "after;")
	waitStored(t, r, "a whole;", "a after;")
	require.Equal(t, 7.0, testutil.ToFloat64(q2.metrics.droppedBytes.WithLabelValues("corrupt")))
	_, err = os.Stat(filepath.Join(dir, filepath.Base(seg)))
	require.True(t, os.IsNotExist(err), "the read segment is deleted")
}
