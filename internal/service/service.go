// Package service is the one lifecycle abstraction of Argus, after dskit's
// services: a component is built by its constructor (no goroutines, no I/O
// that outlives it), then started, run and stopped by a Manager.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Service is a long-running component.
//
// Starting loads state and returns an error if the component is unusable; it
// may block (a WAL replay) and must honour ctx. Running blocks until ctx is
// cancelled (return nil) or the component fails (return the error). Stopping
// flushes and releases resources after Running has returned; it is called
// exactly once for every service whose Starting succeeded.
type Service interface {
	Starting(ctx context.Context) error
	Running(ctx context.Context) error
	Stopping(ctx context.Context) error
}

// Named pairs a service with the name used in logs and errors.
type Named struct {
	Name    string
	Service Service
}

// Manager starts services in order, runs them together and stops them in
// reverse order.
type Manager struct {
	services []Named
	logger   *slog.Logger
}

// NewManager returns a manager of services, started in the given order.
func NewManager(logger *slog.Logger, services ...Named) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{services: services, logger: logger}
}

// Run starts every service, then runs them until ctx is cancelled or one of
// them fails, then stops the started ones in reverse order with stopCtx (the
// shutdown deadline). It returns the first failure, joined with stop errors.
// onReady is called once every service has started.
func (m *Manager) Run(ctx context.Context, stopCtx func() (context.Context, context.CancelFunc), onReady func()) error {
	started := 0
	var runErr error
	for _, s := range m.services {
		m.logger.Info("starting service", "service", s.Name)
		if err := s.Service.Starting(ctx); err != nil {
			runErr = fmt.Errorf("start %s: %w", s.Name, err)
			break
		}
		started++
	}
	if runErr == nil {
		if onReady != nil {
			onReady()
		}
		runErr = m.runAll(ctx)
	}
	sctx, cancel := stopCtx()
	defer cancel()
	for i := started - 1; i >= 0; i-- {
		s := m.services[i]
		m.logger.Info("stopping service", "service", s.Name)
		if err := s.Service.Stopping(sctx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("stop %s: %w", s.Name, err))
		}
	}
	return runErr
}

func (m *Manager) runAll(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for _, s := range m.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Service.Running(ctx)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil && ctx.Err() == nil {
				once.Do(func() { firstErr = fmt.Errorf("run %s: %w", s.Name, err) })
				cancel()
			}
		}()
	}
	wg.Wait()
	return firstErr
}
