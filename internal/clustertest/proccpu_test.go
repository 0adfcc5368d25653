package clustertest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks, after a command name with a space and
	// a parenthesis.
	stat := "4242 (argus (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 2000000 3000"
	got, err := parseStatCPU(stat)
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, got)
	_, err = parseStatCPU("garbage")
	require.Error(t, err)
	_, err = parseStatCPU("1 (x) S 1 2 3")
	require.Error(t, err)

	before, err := ProcessCPU(0)
	require.NoError(t, err)
	// Spin until the CPU time moves (a tick is 10 ms of CPU), for at
	// most 10 s of wall time on a loaded machine.
	after := before
	for start := time.Now(); after == before && time.Since(start) < 10*time.Second; {
		after, err = ProcessCPU(0)
		require.NoError(t, err)
	}
	require.Greater(t, after, before, "10 s of spinning used no CPU")
}
