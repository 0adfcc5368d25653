package querier

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// errorTypeIDs gives the errors of Prometheus's API that carry no ID of
// ours the ID of their errorType, so that every answer of Argus starts with
// one (docs/errors.md) while Grafana and other clients still read
// Prometheus's envelope, errorType and text.
var errorTypeIDs = map[string]apierror.ID{
	"bad_data":  apierror.BadQuery,
	"execution": apierror.QueryFailed,
	// The caller's own timeout (the timeout parameter, a gRPC deadline),
	// not the tenant's -querier.timeout (that
	// one has its ID already, timeout.go).
	"timeout":   apierror.QueryTimeout,
	"canceled":  apierror.QueryCanceled,
	"not_found": apierror.NotFound,
}

// withErrorIDs prefixes the "error" of the API's JSON error answers of the
// types of errorTypeIDs with their ID, keeping the status,
// the envelope and the rest of the text. It wraps the whole API handler,
// under the gRPC query API's hand-over too, so that HTTP and gRPC carry the
// same text. Every other answer passes through untouched.
func withErrorIDs(next http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		iw := &errorIDWriter{ResponseWriter: w}
		next.ServeHTTP(iw, r)
		iw.finish()
	}
}

// errorIDWriter holds back a JSON error answer until the handler is done,
// then rewrites it (withErrorIDs). Successful answers are written through.
type errorIDWriter struct {
	http.ResponseWriter
	status int
	held   bool
	body   bytes.Buffer
}

func (w *errorIDWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		w.held = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorIDWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.held {
		return w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets remote read stream through the writer.
func (w *errorIDWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.held {
		f.Flush()
	}
}

// Unwrap serves http.ResponseController.
func (w *errorIDWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish writes a held answer, with the ID prefixed when it needs one.
func (w *errorIDWriter) finish() {
	if !w.held {
		return
	}
	body := withErrorID(w.body.Bytes())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body) // The client is gone if this fails.
}

// withErrorID returns body, an error envelope, with its error text prefixed
// by its errorType's ID, or body itself when it has an ID already, is of
// another type or is not an envelope. The envelope is decoded into a map so
// that every field Prometheus sends (data, warnings, infos) is kept.
func withErrorID(body []byte) []byte {
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) != nil {
		return body
	}
	var typ, msg string
	if json.Unmarshal(env["errorType"], &typ) != nil || json.Unmarshal(env["error"], &msg) != nil {
		return body
	}
	id, ok := errorTypeIDs[typ]
	if !ok || strings.HasPrefix(msg, apierror.Prefix) {
		return body
	}
	env["error"], _ = json.Marshal(string(id) + ": " + msg) // Cannot fail: a string.
	out, err := json.Marshal(env)
	if err != nil {
		return body
	}
	return out
}
