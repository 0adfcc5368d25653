package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// APIResponse is the envelope of every Prometheus HTTP API answer.
type APIResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// DecodeAPI decodes a Prometheus HTTP API answer, failing the test if body is
// not one.
func DecodeAPI(t testing.TB, body []byte) APIResponse {
	t.Helper()
	var r APIResponse
	require.NoError(t, json.Unmarshal(body, &r), "not a Prometheus API answer: %s", Truncate(string(body), 2000))
	return r
}

// DecodeJSON unmarshals raw into generic values (maps, slices, strings,
// bools) keeping every number as its exact json.Number text, so that a
// cmp.Diff of two decoded answers compares timestamps and values as written.
func DecodeJSON(t testing.TB, raw []byte) any {
	t.Helper()
	v, err := decodeJSON(raw)
	require.NoError(t, err, "decode %s", Truncate(string(raw), 2000))
	return v
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// Series is one series of a matrix result: its labels and raw samples.
type Series struct {
	Metric  map[string]string
	Samples []Sample
}

// MatrixData decodes the data of a successful API answer of result type
// matrix, failing the test otherwise.
func MatrixData(t testing.TB, status int, body []byte) []Series {
	t.Helper()
	require.Equal(t, 200, status, "body: %s", Truncate(string(body), 2000))
	r := DecodeAPI(t, body)
	require.Equal(t, "success", r.Status, "body: %s", Truncate(string(body), 2000))
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string    `json:"metric"`
			Values [][2]json.RawMessage `json:"values"`
		} `json:"result"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&data))
	require.Equal(t, "matrix", data.ResultType)
	out := make([]Series, 0, len(data.Result))
	for _, s := range data.Result {
		ser := Series{Metric: s.Metric, Samples: make([]Sample, 0, len(s.Values))}
		for _, v := range s.Values {
			smp, err := parsePoint(v)
			require.NoError(t, err)
			ser.Samples = append(ser.Samples, smp)
		}
		out = append(out, ser)
	}
	return out
}

func parsePoint(v [2]json.RawMessage) (Sample, error) {
	ts, err := ParseAPITimestamp(string(v[0]))
	if err != nil {
		return Sample{}, err
	}
	var s string
	if err := json.Unmarshal(v[1], &s); err != nil {
		return Sample{}, fmt.Errorf("sample value %s is not a string: %w", v[1], err)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("sample value %q: %w", s, err)
	}
	return Sample{T: ts, V: f}, nil
}

// ParseAPITimestamp parses a timestamp as the Prometheus API writes it
// (seconds with up to three decimals, e.g. 1700000000.5) into milliseconds,
// exactly (no float rounding).
func ParseAPITimestamp(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	secs, frac, _ := strings.Cut(s, ".")
	if len(frac) > 3 {
		return 0, fmt.Errorf("timestamp %q has sub-millisecond digits", s)
	}
	frac += strings.Repeat("0", 3-len(frac))
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	ms, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	v := sec*1000 + ms
	if neg {
		v = -v
	}
	return v, nil
}

// FormatAPITime formats Unix milliseconds as an API time parameter
// (seconds with three decimals, e.g. "1700000000.500").
func FormatAPITime(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

// FormatValue formats a sample value as the Prometheus API writes it: the
// shortest representation that round-trips, in exponent form below 1e-6 and
// from 1e21 on.
func FormatValue(v float64) string {
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.FormatFloat(v, format, -1, 64)
}

// JSONTimestamp formats Unix milliseconds as the Prometheus API writes a
// sample timestamp in JSON: seconds, and a three-digit fraction only when it
// is not zero (1700000000, 1700000000.050).
func JSONTimestamp(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	if ms%1000 == 0 {
		return fmt.Sprintf("%s%d", sign, ms/1000)
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

// SortSeries sorts series by their labels, compared as sorted name=value
// lists, the order of the Prometheus engine's matrix results.
func SortSeries(ss []Series) {
	sort.Slice(ss, func(i, j int) bool { return labelKey(ss[i].Metric) < labelKey(ss[j].Metric) })
}

func labelKey(m map[string]string) string {
	var b strings.Builder
	for _, n := range sortedNames(m) {
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(m[n])
		b.WriteByte(0)
	}
	return b.String()
}

// sortedNames returns the label names of m in order.
func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
