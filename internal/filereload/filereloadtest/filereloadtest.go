// Package filereloadtest helps test a filereload.File and the services that
// own one (limits.Overrides, auth.Authenticator): a log sink to read what the
// service logs while it reloads in the background, a runner that keeps
// Running going until the test ends, and a file writer.
//
// It is for tests only, and imports no package of Argus but internal/service.
package filereloadtest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/service"
)

// Logs is a log sink safe to read while a service goroutine writes to it.
// The zero value is empty and ready to use.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

// Write appends p. It is safe for concurrent use.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far. It is safe for concurrent use.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger returns a logger that writes text lines (level=WARN msg=...) of
// every level from Info up to l.
func (l *Logs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, nil))
}

// Run calls s.Running in a goroutine until the test ends. Then it cancels
// Running, waits for it and requires that it returned nil and that Stopping
// succeeds. The caller has called s.Starting.
func Run(t testing.TB, s service.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Running(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, s.Stopping(context.Background()))
	})
}

// WriteFile replaces file with content, or fails the test.
func WriteFile(t testing.TB, file, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(file, []byte(content), 0o600))
}
