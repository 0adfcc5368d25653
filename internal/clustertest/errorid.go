package clustertest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/stretchr/testify/require"
)

// errorIDPrefix starts every error ID (internal/apierror.Prefix).
const errorIDPrefix = "err-argus-"

// checkErrorID fails the test when an answer of argus that is not a 2xx
// does not start with an error ID, in whichever form the endpoint answers:
// plain text, the Prometheus API's JSON envelope, or OTLP's google.rpc.Status.
// Every request of every e2e suite goes through it (httpClient.do), which
// is how docs/errors.md's promise, "every HTTP error starts with an ID", is
// tested. The Prometheus API's own bad_data and execution answers carry
// one too (err-argus-bad-query, err-argus-query-failed), before
// Prometheus's text.
func checkErrorID(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode < 300 || req.Method == http.MethodHead {
		return
	}
	msg := errorMessage(resp.Header.Get("Content-Type"), body)
	require.True(t, strings.HasPrefix(msg, errorIDPrefix),
		"%s %s answered %d without an error ID first (docs/errors.md): %.300s", req.Method, req.URL.Path, resp.StatusCode, body)
}

// errorMessage returns the error message of an answer body.
func errorMessage(contentType string, body []byte) string {
	switch {
	case strings.HasPrefix(contentType, "application/json"):
		var env struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &env) != nil {
			return string(body)
		}
		if env.Error == "" {
			return env.Message // OTLP's google.rpc.Status as JSON
		}
		return env.Error
	case strings.HasPrefix(contentType, "application/x-protobuf"):
		var st spb.Status
		if proto.Unmarshal(body, &st) == nil {
			return st.GetMessage()
		}
	}
	return string(body)
}
