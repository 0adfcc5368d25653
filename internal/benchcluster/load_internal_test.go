package benchcluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	f := func(stat string, want time.Duration) {
		t.Helper()
		got, err := parseStatCPU(stat)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	f("4242 (argus) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 37 0 0 20 0 9 0 100 0 0", 2870*time.Millisecond)
	// A command name with spaces and parentheses.
	f("7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 30*time.Millisecond)

	_, err := parseStatCPU("garbage")
	require.Error(t, err)
	_, err = parseStatCPU("1 (x) S 1 2 3")
	require.Error(t, err)
}

func TestCPUTimeOfSelf(t *testing.T) {
	d, err := cpuTime(0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, d, time.Duration(0))
}
