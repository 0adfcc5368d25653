package benchquery

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// peakRSS returns the peak resident set size of process pid in bytes: VmHWM
// of /proc/<pid>/status, the high-water mark the kernel keeps since the
// process started (it never goes down, so a reading after a query is the peak
// over the process's life up to then).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("peak rss: %w", err)
	}
	return parseVmHWM(string(b))
}

// currentRSS returns the resident set size of process pid in bytes now:
// VmRSS of /proc/<pid>/status.
func currentRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	return parseStatusKB(string(b), "VmRSS:")
}

// parseVmHWM reads the "VmHWM:  1234 kB" line of a /proc/<pid>/status file
// and returns it in bytes (the kernel's kB are KiB).
func parseVmHWM(status string) (int64, error) {
	return parseStatusKB(status, "VmHWM:")
}

// parseStatusKB reads the "<key>  1234 kB" line of a /proc/<pid>/status
// file and returns it in bytes.
func parseStatusKB(status, key string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse /proc status: %s line %q, want <n> kB", key, sc.Text())
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc status: %s %w", key, err)
		}
		return kib << 10, nil
	}
	return 0, fmt.Errorf("parse /proc status: no %s line", key)
}
