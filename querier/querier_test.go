package querier

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConcurrencyLimit(t *testing.T) {
	l := newConcurrencyLimit(2)
	require.Equal(t, 2, l.GetMaxConcurrent())
	for range 2 {
		_, err := l.Insert(t.Context(), "q")
		require.NoError(t, err)
	}
	// Full: the third query waits until its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_, err := l.Insert(ctx, "q")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	l.Delete(0)
	_, err = l.Insert(t.Context(), "q")
	require.NoError(t, err)
	require.NoError(t, l.Close())
}
