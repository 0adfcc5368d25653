package main

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSetDefaultGOGC: a process running an ingester gets ingesterGOGC, unless
// GOGC is in the environment (even empty) or no ingester runs.
func TestSetDefaultGOGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "200") // Restored after the test; unset below.
	require.Equal(t, 0, setDefaultGOGC(true))
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: the runtime's value stands")

	require.NoError(t, os.Unsetenv("GOGC"))
	require.Equal(t, 0, setDefaultGOGC(false))
	require.Equal(t, 100, debug.SetGCPercent(100), "no ingester: the runtime's value stands")

	require.Equal(t, ingesterGOGC, setDefaultGOGC(true))
	require.Equal(t, ingesterGOGC, debug.SetGCPercent(100))
}
