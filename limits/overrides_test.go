package limits

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/filereload/filereloadtest"
)

const period = 10 * time.Second

type testOverrides struct {
	*Overrides
	file string
	reg  *prometheus.Registry
	logs *filereloadtest.Logs
}

// newTestOverrides writes content (unless it is empty) to a runtime config
// file and returns Overrides reading it with the flag defaults.
func newTestOverrides(t testing.TB, content string) *testOverrides {
	t.Helper()
	file := filepath.Join(t.TempDir(), "runtime.yaml")
	if content != "" {
		filereloadtest.WriteFile(t, file, content)
	}
	reg := prometheus.NewRegistry()
	logs := &filereloadtest.Logs{}
	o, err := New(Config{File: file, ReloadPeriod: period}, defaultLimits(t), Deps{
		Logger:     logs.Logger(),
		Registerer: reg,
	})
	require.NoError(t, err)
	return &testOverrides{Overrides: o, file: file, reg: reg, logs: logs}
}

// successes and failures are the loads counted so far.
func (o *testOverrides) successes() float64 { return testutil.ToFloat64(o.metrics.ReloadSuccesses) }
func (o *testOverrides) failures() float64  { return testutil.ToFloat64(o.metrics.ReloadFailures) }

const twoTenants = `
overrides:
  tenant-a:
    ingestion_rate: 50000
    max_global_series_per_user: 1000000
  tenant-b:
    max_query_length: 720h
    creation_grace_period: 1m
    retention_period: 24h
`

func TestOverrides_TwoTenantsInheritDefaults(t *testing.T) {
	o := newTestOverrides(t, twoTenants)
	defaults := defaultLimits(t)
	require.Equal(t, &defaults, o.For("tenant-a"), "before Starting every tenant gets the defaults")

	require.NoError(t, o.Starting(context.Background()))

	a := defaults
	a.IngestionRate = 50000
	a.MaxGlobalSeriesPerUser = 1000000
	require.Equal(t, &a, o.For("tenant-a"))

	b := defaults
	b.MaxQueryLength = 720 * time.Hour
	b.CreationGracePeriod = time.Minute
	b.RetentionPeriod = 24 * time.Hour
	require.Equal(t, &b, o.For("tenant-b"))

	require.Equal(t, &defaults, o.For("tenant-c"))
	require.NoError(t, testutil.GatherAndCompare(o.reg, strings.NewReader(`
# HELP argus_runtime_config_last_reload_successful 1 if the last load of the runtime config file succeeded, 0 if it failed and the last good config is still in force.
# TYPE argus_runtime_config_last_reload_successful gauge
argus_runtime_config_last_reload_successful 1
# HELP argus_runtime_config_reloads_total Loads of the runtime config file (-runtime-config.file), by status (success, failure).
# TYPE argus_runtime_config_reloads_total counter
argus_runtime_config_reloads_total{status="failure"} 0
argus_runtime_config_reloads_total{status="success"} 1
`)))
}

func TestOverrides_EmptyAndNullEntries(t *testing.T) {
	for name, content := range map[string]string{
		"empty file":      "\n",
		"null overrides":  "overrides:\n",
		"null tenant":     "overrides:\n  tenant-a:\n",
		"empty tenant":    "overrides:\n  tenant-a: {}\n",
		"comment only":    "# nothing yet\n",
		"empty overrides": "overrides: {}\n",
	} {
		t.Run(name, func(t *testing.T) {
			o := newTestOverrides(t, "")
			filereloadtest.WriteFile(t, o.file, content)
			require.NoError(t, o.Starting(context.Background()))
			defaults := defaultLimits(t)
			require.Equal(t, &defaults, o.For("tenant-a"))
		})
	}
}

func TestOverrides_NoFile(t *testing.T) {
	reg := prometheus.NewRegistry()
	o, err := New(Config{ReloadPeriod: period}, defaultLimits(t), Deps{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, o.Starting(context.Background()))
	defaults := defaultLimits(t)
	require.Equal(t, &defaults, o.For("tenant-a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, o.Running(ctx))
}

func TestOverrides_StartingFails(t *testing.T) {
	for name, tc := range map[string]struct {
		content string // empty: no file
		is      error
		msg     string
	}{
		"missing file":    {"", fs.ErrNotExist, "runtime.yaml"},
		"not yaml":        {"overrides: [", nil, "yaml"},
		"unknown field":   {"overrides:\n  tenant-a:\n    ingestion_rat: 1\n", nil, "ingestion_rat"},
		"unknown top key": {"limits: {}\n", nil, "limits"},
		"wrong type":      {"overrides:\n  tenant-a:\n    max_query_length: forever\n", nil, "line 3"},
		"invalid limit":   {"overrides:\n  tenant-a:\n    max_label_names_per_series: 0\n", ErrInvalidLimit, "tenant-a"},
		"invalid tenant":  {"overrides:\n  \"..\":\n    ingestion_rate: 1\n", nil, `".."`},
	} {
		t.Run(name, func(t *testing.T) {
			o := newTestOverrides(t, tc.content)
			err := o.Starting(context.Background())
			require.ErrorIs(t, err, ErrRuntimeConfig)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, 0.0, testutil.ToFloat64(o.metrics.LastReloadSuccessful))
			require.Equal(t, 1.0, o.failures())
		})
	}
}

func TestOverrides_ReloadPicksUpChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newTestOverrides(t, twoTenants)
		require.NoError(t, o.Starting(context.Background()))
		filereloadtest.Run(t, o)
		before := o.For("tenant-a")
		require.InDelta(t, 50000.0, before.IngestionRate, 0)

		filereloadtest.WriteFile(t, o.file, strings.Replace(twoTenants, "ingestion_rate: 50000", "ingestion_rate: 70000", 1))
		time.Sleep(period)
		synctest.Wait()

		after := o.For("tenant-a")
		require.InDelta(t, 70000.0, after.IngestionRate, 0)
		require.Equal(t, 1000000, after.MaxGlobalSeriesPerUser)
		require.InDelta(t, 50000.0, before.IngestionRate, 0, "a reload must not modify limits already handed out")
		require.Equal(t, 2.0, o.successes())
	})
}

func TestOverrides_BrokenFileKeepsLastGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newTestOverrides(t, twoTenants)
		require.NoError(t, o.Starting(context.Background()))
		filereloadtest.Run(t, o)
		good := *o.For("tenant-a")

		filereloadtest.WriteFile(t, o.file, "overrides:\n  tenant-a:\n    ingestion_rate: [\n")
		for range 3 {
			time.Sleep(period)
			synctest.Wait()
		}
		require.Equal(t, &good, o.For("tenant-a"))
		require.Equal(t, 0.0, testutil.ToFloat64(o.metrics.LastReloadSuccessful))
		require.Equal(t, 3.0, o.failures())
		require.Equal(t, 1, strings.Count(o.logs.String(), "level=WARN"), "one warning per distinct failure:\n%s", o.logs)

		require.NoError(t, os.Remove(o.file))
		time.Sleep(period)
		synctest.Wait()
		require.Equal(t, &good, o.For("tenant-a"))
		require.Equal(t, 2, strings.Count(o.logs.String(), "level=WARN"), "a new failure is logged:\n%s", o.logs)

		filereloadtest.WriteFile(t, o.file, "overrides:\n  tenant-a:\n    ingestion_rate: 1\n")
		time.Sleep(period)
		synctest.Wait()
		require.InDelta(t, 1.0, o.For("tenant-a").IngestionRate, 0)
		require.Equal(t, 1.0, testutil.ToFloat64(o.metrics.LastReloadSuccessful))
		require.Equal(t, 2.0, o.successes())
	})
}

func TestOverrides_New(t *testing.T) {
	bad := defaultLimits(t)
	bad.MaxLabelNameLength = 0
	_, err := New(Config{ReloadPeriod: period}, bad, Deps{})
	require.ErrorIs(t, err, ErrInvalidLimit)
	_, err = New(Config{}, defaultLimits(t), Deps{})
	require.ErrorContains(t, err, "-runtime-config.reload-period")
}

func TestConfig_Flags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, Config{ReloadPeriod: 10 * time.Second}, c)
	require.NoError(t, fs.Parse([]string{"-runtime-config.file=/etc/argus/runtime.yaml", "-runtime-config.reload-period=1m"}))
	require.Equal(t, Config{File: "/etc/argus/runtime.yaml", ReloadPeriod: time.Minute}, c)
	require.NoError(t, c.Validate())
}
