package filereload

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/argus-tsdb/argus/internal/service"
)

// Config says which file a File serves. It is set by the file's owner, not
// by flags: the owner's Config holds the flags.
type Config struct {
	// Path is the file. Required.
	Path string
	// Period is how often Running re-reads Path. Must be positive.
	Period time.Duration
	// What names the file in errors, before its path: "token file" gives
	// "token file /etc/argus/tokens.yaml: <why>".
	What string
	// Err is the owner's sentinel that every load error matches with
	// errors.Is (such as auth.ErrTokenFile). Nil: none.
	Err error
}

// Deps are the owner's functions and the runtime dependencies of a File.
type Deps[T any] struct {
	// Parse turns the file's bytes into the value Load serves, or returns
	// why they are invalid; it returns a non-nil value or an error. It must
	// depend on data only: a file whose bytes did not change since the last
	// good load is not parsed again. It may keep data, which is not reused.
	// Required.
	Parse func(data []byte) (*T, error)
	// OnLoad, if not nil, is called with each new value once Load serves it,
	// not after an unchanged file: the owner logs the load there.
	OnLoad func(v *T)
	// Logger receives the reload warnings; nil discards. The owner passes
	// its own, with its component attribute.
	Logger *slog.Logger
	// Metrics are the reload metrics, from NewMetrics. Required.
	Metrics *Metrics
}

// File serves a file that is loaded by Starting and re-read every
// Config.Period by Running: Load returns its last good parsed value.
//
// A load that fails counts a failure, sets Metrics.LastReloadSuccessful to 0
// and keeps the last good value in force. Starting returns the error; Running
// logs it at Warn, once per distinct failure since the last success, naming
// the gauge. A load that succeeds counts a success and sets the gauge to 1;
// if the file's bytes (their SHA-256) are those of the last good load, it is
// not parsed, swapped in or reported to OnLoad again.
//
// Load is safe for concurrent use with everything, and never blocks. Starting,
// Running and Stopping are called by one service manager, in that order; Parse
// and OnLoad run on the goroutine that runs Starting, then Running.
type File[T any] struct {
	cfg     Config
	parse   func([]byte) (*T, error)
	onLoad  func(*T)
	logger  *slog.Logger
	metrics *Metrics

	// current is nil until the first successful load, then replaced whole
	// by each changed one; the values are never modified.
	current atomic.Pointer[T]

	// Owned by the goroutine that runs Starting, then Running.
	lastHash    [sha256.Size]byte
	lastWarning string
}

var _ service.Service = (*File[struct{}])(nil)

// New returns a File that serves nothing (Load returns nil) until Starting
// loads cfg.Path. It does no I/O and starts no goroutine.
func New[T any](cfg Config, deps Deps[T]) (*File[T], error) {
	var errs []error
	if cfg.Path == "" {
		errs = append(errs, errors.New("no file path"))
	}
	if cfg.Period <= 0 {
		errs = append(errs, errors.New("reload period must be positive"))
	}
	if deps.Parse == nil {
		errs = append(errs, errors.New("no parse function"))
	}
	if deps.Metrics == nil {
		errs = append(errs, errors.New("no metrics"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &File[T]{
		cfg:     cfg,
		parse:   deps.Parse,
		onLoad:  deps.OnLoad,
		logger:  logger,
		metrics: deps.Metrics,
	}, nil
}

// Load returns the value of the last good load, or nil before the first. The
// value is shared and must not be modified; it stays valid, unchanged, after
// a reload. Load never blocks and takes no lock.
func (f *File[T]) Load() *T {
	return f.current.Load()
}

// Starting loads the file, and returns an error if it cannot be read or
// parsed.
func (f *File[T]) Starting(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.reload()
}

// Running re-reads the file every Config.Period until ctx is cancelled. A
// failed reload keeps the last good value; Running itself never fails.
func (f *File[T]) Running(ctx context.Context) error {
	ticker := time.NewTicker(f.cfg.Period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if err := f.reload(); err != nil {
				f.warnOnce(err)
			}
		}
	}
}

// Stopping does nothing: a File holds no resource.
func (f *File[T]) Stopping(context.Context) error { return nil }

// reload reads the file and swaps it in if it is valid and changed.
func (f *File[T]) reload() error {
	v, hash, err := f.read()
	if err != nil {
		f.metrics.ReloadFailures.Inc()
		f.metrics.LastReloadSuccessful.Set(0)
		return loadError{what: f.cfg.What, path: f.cfg.Path, sentinel: f.cfg.Err, err: err}
	}
	f.metrics.ReloadSuccesses.Inc()
	f.metrics.LastReloadSuccessful.Set(1)
	f.lastWarning = ""
	if v == nil {
		return nil // unchanged
	}
	f.current.Store(v)
	f.lastHash = hash
	if f.onLoad != nil {
		f.onLoad(v)
	}
	return nil
}

// read reads and parses the file. It returns a nil value and no error if the
// file is the one in force.
func (f *File[T]) read() (*T, [sha256.Size]byte, error) {
	data, err := os.ReadFile(f.cfg.Path)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	hash := sha256.Sum256(data)
	if hash == f.lastHash && f.current.Load() != nil {
		return nil, hash, nil
	}
	v, err := f.parse(data)
	if err == nil && v == nil {
		err = errors.New("parse returned neither a value nor an error")
	}
	return v, hash, err
}

// warnOnce logs a reload failure unless it is the same as the last one
// logged since the last success.
func (f *File[T]) warnOnce(err error) {
	msg := err.Error()
	if msg == f.lastWarning {
		return
	}
	f.lastWarning = msg
	f.logger.Warn("file reload failed, keeping the last good version",
		"file", f.cfg.Path, "err", err, "see_metric", f.metrics.lastReloadName)
}
