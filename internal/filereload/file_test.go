package filereload

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/filereload/filereloadtest"
)

const period = 10 * time.Second

var errTestFile = errors.New("invalid test file")

// value is what the test files parse to: their text.
type value struct{ text string }

type testFile struct {
	*File[value]
	path    string
	metrics *Metrics
	reg     *prometheus.Registry
	logs    *filereloadtest.Logs
	// parses and loads count the calls of Parse and OnLoad. They are
	// atomic because the test reads them while Running may call them.
	parses, loads atomic.Int64
}

// newTestFile returns a File of path "test.yaml" in a temporary directory,
// holding content unless it is empty. Its Parse fails with the text of a
// file that starts with "bad", so that each bad content is a distinct failure.
func newTestFile(t testing.TB, content string) *testFile {
	t.Helper()
	tf := &testFile{
		path: filepath.Join(t.TempDir(), "test.yaml"),
		reg:  prometheus.NewRegistry(),
		logs: &filereloadtest.Logs{},
	}
	if content != "" {
		filereloadtest.WriteFile(t, tf.path, content)
	}
	tf.metrics = NewMetrics(tf.reg,
		prometheus.GaugeOpts{Name: "argus_test_file_last_reload_successful", Help: "Last load succeeded."},
		prometheus.CounterOpts{Name: "argus_test_file_reloads_total", Help: "Loads, by status."})
	f, err := New(Config{Path: tf.path, Period: period, What: "test file", Err: errTestFile}, Deps[value]{
		Parse: func(data []byte) (*value, error) {
			tf.parses.Add(1)
			if s := string(data); strings.HasPrefix(s, "bad") {
				return nil, errors.New(s)
			}
			return &value{text: string(data)}, nil
		},
		OnLoad:  func(*value) { tf.loads.Add(1) },
		Logger:  tf.logs.Logger(),
		Metrics: tf.metrics,
	})
	require.NoError(t, err)
	tf.File = f
	return tf
}

// state is what a test checks after each load.
type state struct {
	text                string // of Load; "" if nil
	gauge               float64
	successes, failures float64
	parses, loads       int64
	warnings            int
}

func (tf *testFile) state() state {
	s := state{
		gauge:     testutil.ToFloat64(tf.metrics.LastReloadSuccessful),
		successes: testutil.ToFloat64(tf.metrics.ReloadSuccesses),
		failures:  testutil.ToFloat64(tf.metrics.ReloadFailures),
		parses:    tf.parses.Load(),
		loads:     tf.loads.Load(),
		warnings:  strings.Count(tf.logs.String(), "level=WARN"),
	}
	if v := tf.Load(); v != nil {
		s.text = v.text
	}
	return s
}

// TestFile_Reload runs a File through a sequence of file contents, one
// reload period each, and checks its state after each.
func TestFile_Reload(t *testing.T) {
	steps := []struct {
		name  string
		write string // "" leaves the file as it is
		want  state
	}{
		{"unchanged: counted, not parsed, swapped in or announced again", "",
			state{text: "one", gauge: 1, successes: 2, parses: 1, loads: 1}},
		{"changed: swapped in", "two",
			state{text: "two", gauge: 1, successes: 3, parses: 2, loads: 2}},
		{"broken: the last good value stays, with a warning", "bad: first",
			state{text: "two", successes: 3, failures: 1, parses: 3, loads: 2, warnings: 1}},
		{"broken again: no new warning", "",
			state{text: "two", successes: 3, failures: 2, parses: 4, loads: 2, warnings: 1}},
		{"broken otherwise: another warning", "bad: second",
			state{text: "two", successes: 3, failures: 3, parses: 5, loads: 2, warnings: 2}},
		{"back to the bytes in force: a success without a parse or a load", "two",
			state{text: "two", gauge: 1, successes: 4, failures: 3, parses: 5, loads: 2, warnings: 2}},
		{"a success forgets the last warning: the same failure warns again", "bad: second",
			state{text: "two", successes: 4, failures: 4, parses: 6, loads: 2, warnings: 3}},
		{"fixed", "three",
			state{text: "three", gauge: 1, successes: 5, failures: 4, parses: 7, loads: 3, warnings: 3}},
	}
	synctest.Test(t, func(t *testing.T) {
		tf := newTestFile(t, "one")
		require.Nil(t, tf.Load(), "nothing before Starting")
		require.NoError(t, tf.Starting(context.Background()))
		require.Equal(t, state{text: "one", gauge: 1, successes: 1, parses: 1, loads: 1}, tf.state())
		first := tf.Load()
		filereloadtest.Run(t, tf.File)

		for _, step := range steps {
			if step.write != "" {
				filereloadtest.WriteFile(t, tf.path, step.write)
			}
			time.Sleep(period)
			synctest.Wait()
			require.Equal(t, step.want, tf.state(), step.name)
		}
		require.Equal(t, "one", first.text, "a reload does not modify a value handed out")
		logs := tf.logs.String()
		require.Contains(t, logs, "file="+tf.path)
		require.Contains(t, logs, `err="test file `+tf.path+`: bad: first"`)
		require.Contains(t, logs, "see_metric=argus_test_file_last_reload_successful")
	})
}

func TestFile_StartingFails(t *testing.T) {
	for name, tc := range map[string]struct {
		content string // empty: no file
		is      error
		msg     string
	}{
		"missing file": {"", fs.ErrNotExist, "no such file"},
		"invalid file": {"bad: not a number", nil, "bad: not a number"},
	} {
		t.Run(name, func(t *testing.T) {
			tf := newTestFile(t, tc.content)
			err := tf.Starting(context.Background())
			require.ErrorIs(t, err, errTestFile)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.True(t, strings.HasPrefix(err.Error(), "test file "+tf.path+": "), err.Error())
			require.ErrorContains(t, err, tc.msg)
			require.Nil(t, tf.Load())
			require.Equal(t, state{failures: 1, parses: tf.parses.Load()}, tf.state(), "counted, and not logged: the error is returned")
		})
	}
}

func TestFile_StartingCancelled(t *testing.T) {
	tf := newTestFile(t, "one")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, tf.Starting(ctx), context.Canceled)
	require.Equal(t, state{}, tf.state(), "nothing read or counted")
}

func TestFile_ParseReturnsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.yaml")
	filereloadtest.WriteFile(t, path, "one")
	m := NewMetrics(nil, prometheus.GaugeOpts{Name: "g"}, prometheus.CounterOpts{Name: "c"})
	f, err := New(Config{Path: path, Period: period, What: "test file"}, Deps[value]{
		Parse:   func([]byte) (*value, error) { return nil, nil },
		Metrics: m,
	})
	require.NoError(t, err)
	err = f.Starting(context.Background())
	require.ErrorContains(t, err, "test file "+path+": parse returned neither a value nor an error")
	require.NotErrorIs(t, err, errTestFile, "no Config.Err, no sentinel")
	require.Nil(t, f.Load())
	require.Equal(t, 1.0, testutil.ToFloat64(m.ReloadFailures))
}

func TestNew_Invalid(t *testing.T) {
	m := NewMetrics(nil, prometheus.GaugeOpts{Name: "g"}, prometheus.CounterOpts{Name: "c"})
	parse := func([]byte) (*value, error) { return &value{}, nil }
	for name, tc := range map[string]struct {
		cfg  Config
		deps Deps[value]
		msg  string
	}{
		"no path":     {Config{Period: period}, Deps[value]{Parse: parse, Metrics: m}, "no file path"},
		"no period":   {Config{Path: "f"}, Deps[value]{Parse: parse, Metrics: m}, "reload period must be positive"},
		"no parse":    {Config{Path: "f", Period: period}, Deps[value]{Metrics: m}, "no parse function"},
		"no metrics":  {Config{Path: "f", Period: period}, Deps[value]{Parse: parse}, "no metrics"},
		"all of them": {Config{}, Deps[value]{}, "no file path\nreload period must be positive\nno parse function\nno metrics"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.deps)
			require.EqualError(t, err, tc.msg)
		})
	}
}

func TestNewMetrics(t *testing.T) {
	tf := newTestFile(t, "one")
	require.NoError(t, testutil.GatherAndCompare(tf.reg, strings.NewReader(`
# HELP argus_test_file_last_reload_successful Last load succeeded.
# TYPE argus_test_file_last_reload_successful gauge
argus_test_file_last_reload_successful 0
# HELP argus_test_file_reloads_total Loads, by status.
# TYPE argus_test_file_reloads_total counter
argus_test_file_reloads_total{status="failure"} 0
argus_test_file_reloads_total{status="success"} 0
`)), "both statuses exist at zero before the first load")
	require.Equal(t, "argus_test_file_last_reload_successful", tf.metrics.lastReloadName)
	m := NewMetrics(nil, prometheus.GaugeOpts{Namespace: "argus", Subsystem: "x", Name: "last_reload_successful"}, prometheus.CounterOpts{Name: "c"})
	require.Equal(t, "argus_x_last_reload_successful", m.lastReloadName, "the warnings name the gauge in full")
}
