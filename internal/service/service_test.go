package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fake is a function-field fake that records the calls it gets.
type fake struct {
	name    string
	calls   *[]string
	start   error
	run     func(ctx context.Context) error
	stopErr error
}

func (f *fake) Starting(context.Context) error {
	*f.calls = append(*f.calls, "start "+f.name)
	return f.start
}

func (f *fake) Running(ctx context.Context) error {
	if f.run != nil {
		return f.run(ctx)
	}
	<-ctx.Done()
	return nil
}

func (f *fake) Stopping(context.Context) error {
	*f.calls = append(*f.calls, "stop "+f.name)
	return f.stopErr
}

func stopCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Second)
}

func TestManager_StartsInOrderStopsInReverse(t *testing.T) {
	var calls []string
	ctx, cancel := context.WithCancel(context.Background())
	m := NewManager(nil, Named{"a", &fake{name: "a", calls: &calls}}, Named{"b", &fake{name: "b", calls: &calls}})
	require.NoError(t, m.Run(ctx, stopCtx, cancel)) // Ready cancels at once.
	require.Equal(t, []string{"start a", "start b", "stop b", "stop a"}, calls)
}

func TestManager_FailedStartStopsOnlyStarted(t *testing.T) {
	var calls []string
	boom := errors.New("boom")
	ready := false
	m := NewManager(nil,
		Named{"a", &fake{name: "a", calls: &calls}},
		Named{"b", &fake{name: "b", calls: &calls, start: boom}},
		Named{"c", &fake{name: "c", calls: &calls}})
	err := m.Run(context.Background(), stopCtx, func() { ready = true })
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "start b")
	require.False(t, ready)
	require.Equal(t, []string{"start a", "start b", "stop a"}, calls)
}

func TestManager_RunFailureStopsAll(t *testing.T) {
	var calls []string
	boom := errors.New("boom")
	m := NewManager(nil,
		Named{"a", &fake{name: "a", calls: &calls}},
		Named{"b", &fake{name: "b", calls: &calls, run: func(context.Context) error { return boom }, stopErr: errors.New("stop failed")}})
	err := m.Run(context.Background(), stopCtx, nil)
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "run b")
	require.ErrorContains(t, err, "stop b: stop failed")
	require.Equal(t, []string{"start a", "start b", "stop b", "stop a"}, calls)
}

func TestManager_RunReturningEarlyIsAFailure(t *testing.T) {
	var calls []string
	m := NewManager(nil, Named{"a", &fake{name: "a", calls: &calls, run: func(context.Context) error { return nil }}})
	require.ErrorContains(t, m.Run(context.Background(), stopCtx, nil), "run a: stopped unexpectedly")
}
