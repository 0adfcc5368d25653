package scraper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/argus-tsdb/argus/internal/tenant"
)

// RemoteWriter pushes to a remote-write 1.0 URL over HTTP, the tenant in
// X-Scope-OrgID. It is safe for concurrent use. It does not retry a
// failed push: alone, the next scrape brings fresh samples; behind a Queue
// (-scraper.wal-dir), the queue retries.
type RemoteWriter struct {
	url    string
	client *http.Client
}

// NewRemoteWriter returns a RemoteWriter to url with timeout per push.
func NewRemoteWriter(url string, timeout time.Duration) *RemoteWriter {
	return &RemoteWriter{url: url, client: &http.Client{Timeout: timeout}}
}

// Push posts body and returns an error for any answer but a 2xx.
func (w *RemoteWriter) Push(ctx context.Context, tenantID string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	setRemoteWriteHeaders(req.Header, tenantID)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return &statusError{code: resp.StatusCode, msg: fmt.Sprintf("remote write answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))}
}

// statusError is a push answered with a status other than 2xx.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// retriable reports whether a failed push may succeed if sent again, as
// Prometheus's remote write decides: a 5xx or 429 answer, or no answer.
func retriable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code/100 == 5 || se.code == http.StatusTooManyRequests
	}
	return true
}

func setRemoteWriteHeaders(h http.Header, tenantID string) {
	h.Set("Content-Encoding", "snappy")
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	h.Set("X-Scope-OrgID", tenantID)
}

// HandlerPusher pushes in-process to a remote-write handler of this
// process (the distributor's PushHandler), with the tenant in the request's
// context as the auth middleware would put it: the samples go through the
// distributor's validation, limits and replication exactly as a remote
// write does, without a loopback connection. It is safe for concurrent use
// if the handler is.
type HandlerPusher struct {
	h http.Handler
}

// NewHandlerPusher returns a HandlerPusher to h.
func NewHandlerPusher(h http.Handler) *HandlerPusher { return &HandlerPusher{h: h} }

// Push serves body to the handler and returns an error for any answer but
// a 2xx.
func (p *HandlerPusher) Push(ctx context.Context, tenantID string, body []byte) error {
	req, err := http.NewRequestWithContext(tenant.With(ctx, tenantID), http.MethodPost, "/api/v1/push", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(body))
	setRemoteWriteHeaders(req.Header, tenantID)
	var rw responseRecorder
	p.h.ServeHTTP(&rw, req)
	if rw.code == 0 || rw.code/100 == 2 {
		return nil
	}
	return fmt.Errorf("distributor answered %d: %s", rw.code, strings.TrimSpace(rw.body.String()))
}

// responseRecorder keeps the status and the start of the body of an
// in-process answer.
type responseRecorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *responseRecorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *responseRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *responseRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if r.body.Len() < 1024 {
		r.body.Write(b[:min(len(b), 1024-r.body.Len())])
	}
	return len(b), nil
}
