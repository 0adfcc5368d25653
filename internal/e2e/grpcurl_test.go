package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/internal/auth"
	"github.com/argus-tsdb/argus/internal/clustertest"
)

// grpcurl runs the real grpcurl in plaintext with flags, then addr, then
// verb (a method, or list, or describe and a symbol), and returns its
// stdout, its stderr and whether it succeeded.
func grpcurl(t *testing.T, addr string, flags []string, verb ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	args := append(append([]string{"-plaintext", "-max-time", "30"}, flags...), addr)
	cmd := exec.CommandContext(t.Context(), clustertest.GrpcurlBinary(t), append(args, verb...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err == nil
}

// TestGrpcurl drives the public gRPC query API of the real binary with the
// real grpcurl, which learns the service from gRPC reflection only (no
// .proto file is given): listing and describing the services, the health
// check, an instant query, label values, and a refusal whose status
// carries the err-argus-* ID.
func TestGrpcurl(t *testing.T) {
	skipIfShort(t)
	clustertest.GrpcurlBinary(t)
	t.Parallel()
	const tenant = "grpcurl"
	a := clustertest.StartArgus(t, clustertest.Options{})
	addr := a.GRPCAddr()
	now := time.Now().Truncate(time.Second)
	pushOK(t, a, tenant, []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "grpcurl_test", "job", "a"), Samples: []clustertest.Sample{{T: now.UnixMilli(), V: 1.5}}},
		{Labels: clustertest.Labels("__name__", "grpcurl_test", "job", "b"), Samples: []clustertest.Sample{{T: now.UnixMilli(), V: -2}}},
	})

	out, errOut, ok := grpcurl(t, addr, nil, "list")
	require.True(t, ok, errOut)
	for _, svc := range []string{"argus.query.v1.Query", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		require.Contains(t, strings.Fields(out), svc)
	}
	out, errOut, ok = grpcurl(t, addr, nil, "describe", "argus.query.v1.Query")
	require.True(t, ok, errOut)
	require.Contains(t, out, "rpc QueryRange ( .argus.query.v1.QueryRangeRequest ) returns ( stream .argus.query.v1.QueryResponse );")

	for _, svc := range []string{"", "argus.query.v1.Query"} {
		out, errOut, ok = grpcurl(t, addr, []string{"-d", fmt.Sprintf(`{"service":%q}`, svc)}, "grpc.health.v1.Health/Check")
		require.True(t, ok, errOut)
		require.JSONEq(t, `{"status":"SERVING"}`, out)
	}

	out, errOut, ok = grpcurl(t, addr, []string{"-H", "x-scope-orgid: " + tenant,
		"-d", fmt.Sprintf(`{"query":"grpcurl_test","time_ms":%d}`, now.UnixMilli())}, "argus.query.v1.Query/Query")
	require.True(t, ok, errOut)
	var frame struct {
		ResultType string `json:"resultType"`
		Series     []struct {
			Labels            []struct{ Name, Value string }
			FloatTimestampsMs []string `json:"floatTimestampsMs"`
			FloatValues       []float64
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &frame), out)
	require.Equal(t, "VECTOR", frame.ResultType)
	require.Len(t, frame.Series, 2, out)
	ts := fmt.Sprint(now.UnixMilli())
	require.Equal(t, []string{ts}, frame.Series[0].FloatTimestampsMs)
	require.Equal(t, []float64{1.5}, frame.Series[0].FloatValues)
	require.Equal(t, []float64{-2}, frame.Series[1].FloatValues)
	require.Equal(t, "a", frame.Series[0].Labels[1].Value)

	out, errOut, ok = grpcurl(t, addr, []string{"-H", "x-scope-orgid: " + tenant, "-d", `{"name":"job"}`}, "argus.query.v1.Query/LabelValues")
	require.True(t, ok, errOut)
	require.JSONEq(t, `{"values":["a","b"]}`, out)

	_, errOut, ok = grpcurl(t, addr, []string{"-d", `{"query":"up"}`}, "argus.query.v1.Query/Query")
	require.False(t, ok)
	require.Contains(t, errOut, "Code: Unauthenticated")
	require.Contains(t, errOut, "Message: err-argus-missing-tenant: the X-Scope-OrgID header is missing")
}

// TestArgusQueryCLI runs `argus query` against the real binary with
// -auth.type=token: a table, the same query as JSON, and refusals (no
// token, another tenant's token, a bad query) on stderr with their
// err-argus-* ID (or Prometheus's text) and exit status 1.
func TestArgusQueryCLI(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	require.NoError(t, os.WriteFile(tokens, []byte(fmt.Sprintf("tokens:\n  - sha256: %q\n    tenants: [cli]\n  - sha256: %q\n    tenants: [other]\n",
		auth.HashToken("token-cli"), auth.HashToken("token-other"))), 0o600))
	a := clustertest.StartArgus(t, clustertest.Options{Flags: []string{"-auth.type=token", "-auth.token-file=" + tokens}})
	at := time.Now().Add(-time.Second).Truncate(time.Second)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.PushURL(), bytes.NewReader(clustertest.EncodeWriteRequest(t, []clustertest.TimeSeries{
		{Labels: clustertest.Labels("__name__", "cli_test", "job", "a"), Samples: []clustertest.Sample{{T: at.UnixMilli(), V: 0.25}}},
	})))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("Authorization", "Bearer token-cli")
	code, body := a.Do(t, req)
	require.Equal(t, http.StatusNoContent, code, "%s", body)
	addr := "-addr=" + a.GRPCAddr()
	when := "-time=" + clustertest.FormatAPITime(at.UnixMilli())

	out := runArgusQuery(t, 0, addr, "-tenant=cli", "-token=token-cli", when, "cli_test")
	require.Equal(t, fmt.Sprintf("SERIES                          TIME        VALUE\n{__name__=\"cli_test\", job=\"a\"}  %d  0.25\n", at.Unix()), out)
	out = runArgusQuery(t, 0, addr, "-tenant=cli", "-token=token-cli", when, "-output=json", "cli_test")
	require.Equal(t, fmt.Sprintf(`{"resultType":"vector","result":[{"metric":{"__name__":"cli_test","job":"a"},"value":[%d,"0.25"]}]}`+"\n", at.Unix()), out)

	errOut := runArgusQuery(t, 1, addr, "-tenant=cli", when, "cli_test")
	require.Equal(t, "argus query: err-argus-unauthorized: tenant \"cli\": no bearer token: send one Authorization: Bearer <token> header\n", errOut)
	errOut = runArgusQuery(t, 1, addr, "-tenant=cli", "-token=token-other", when, "cli_test")
	require.Equal(t, "argus query: err-argus-unauthorized: tenant \"cli\": the bearer token is not valid\n", errOut)
	errOut = runArgusQuery(t, 1, addr, "-token=token-cli", when, "sum(")
	require.Equal(t, "argus query: err-argus-bad-query: invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis\n", errOut)
}
