package benchquery

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseVmHWM(t *testing.T) {
	got, err := parseVmHWM("Name:\targus\nVmPeak:\t 2000000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n")
	require.NoError(t, err)
	require.Equal(t, int64(123456<<10), got)

	for name, status := range map[string]string{
		"missing":   "Name:\targus\nVmRSS:\t 100 kB\n",
		"no unit":   "VmHWM:\t 100\n",
		"not a num": "VmHWM:\t x kB\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseVmHWM(status)
			require.Error(t, err)
		})
	}
}

func TestPeakRSSOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("VmHWM is read from /proc, which %s does not have", runtime.GOOS)
	}
	got, err := peakRSS(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, got)
}
