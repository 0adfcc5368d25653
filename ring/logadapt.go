package ring

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newStdLogger returns a *log.Logger (what memberlist wants) that writes to
// logger. memberlist prefixes its lines with "[DEBUG]", "[INFO]", "[WARN]" or
// "[ERR]"; that prefix becomes the slog level and the rest the detail
// attribute of a constant "memberlist" message. Memberlist's INFO lines are
// logged at Debug: they are per-member chatter, not operator actions.
func newStdLogger(logger *slog.Logger) *log.Logger {
	return log.New(slogWriter{logger: logger}, "", 0)
}

type slogWriter struct{ logger *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelDebug
	for _, l := range []struct {
		prefix string
		level  slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelDebug}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if bytes.HasPrefix(line, []byte(l.prefix)) {
			level = l.level
			line = bytes.TrimSpace(line[len(l.prefix):])
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	// memberlist's listeners report the socket its own Shutdown closed as
	// an [ERR]; that is a normal stop, not something an operator must act on.
	if level == slog.LevelError && bytes.Contains(line, []byte("use of closed network connection")) {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, "memberlist", "detail", string(line))
	return len(p), nil
}
