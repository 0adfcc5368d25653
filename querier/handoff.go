package querier

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	v1 "github.com/prometheus/prometheus/web/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// The gRPC query API (grpcquery.go) answers through the very handler that
// serves the HTTP API, so that both share every step of a request: the
// parsing and checking of its parameters, the tenant's query limits and
// timeout, partial responses, the engine, and every error with its text.
// Only the last step differs: instead of rendering the API's Response as
// JSON, the handler hands it over, still holding the engine's result, to
// the gRPC stream, which sends it in frames before the handler returns and
// the engine reclaims the result's memory.
//
// The hand-over is a v1.Codec, which Prometheus's API picks by the Accept
// header: the gRPC server asks for handoffMIME, the codec parks the
// Response under a token and returns the token as the "encoded" body, and
// the gRPC server's ResponseWriter (handoffWriter) takes the Response back
// by that token when the API writes the body. HTTP clients cannot ask for
// the codec: Handler removes the media type from their Accept header
// (withoutHandoff).

// handoffMIME is the media type that selects the hand-over codec.
var handoffMIME = v1.MIMEType{Type: "application", SubType: "x-argus-grpc-handoff"}

// handoffMagic starts a hand-over token, so that a body that is not one is
// never mistaken for one.
const handoffMagic = "argus-handoff:"

// handoffCodec parks Responses until their writer takes them. It is safe for
// concurrent use.
type handoffCodec struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]*v1.Response // guarded by mu
}

func newHandoffCodec() *handoffCodec {
	return &handoffCodec{pending: map[uint64]*v1.Response{}}
}

func (*handoffCodec) ContentType() v1.MIMEType    { return handoffMIME }
func (*handoffCodec) CanEncode(*v1.Response) bool { return true }

// Encode parks resp and returns its token. The API writes the token at once
// to the handoffWriter of the request, which takes resp back.
func (c *handoffCodec) Encode(resp *v1.Response) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.pending[c.next] = resp
	return binary.BigEndian.AppendUint64([]byte(handoffMagic), c.next), nil
}

// take returns the Response parked under the token b, and forgets it.
func (c *handoffCodec) take(b []byte) (*v1.Response, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(handoffMagic))
	if !ok || len(rest) != 8 {
		return nil, false
	}
	id := binary.BigEndian.Uint64(rest)
	c.mu.Lock()
	defer c.mu.Unlock()
	resp, ok := c.pending[id]
	delete(c.pending, id)
	return resp, ok
}

// withoutHandoff removes the hand-over media type from the Accept header of
// HTTP requests, so that only the gRPC server gets Responses handed over.
func withoutHandoff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), handoffMIME.SubType) {
			r = r.Clone(r.Context())
			r.Header.Del("Accept")
		}
		next.ServeHTTP(w, r)
	})
}

// handoffWriter is the ResponseWriter of a gRPC call's request: a successful
// answer is handed to emit, which sends it on the call's stream while the API
// waits in Write (the back-pressure of a slow reader); anything else is kept
// as the error body. It is used by one goroutine.
type handoffWriter struct {
	codec   *handoffCodec
	emit    func(*v1.Response) error
	header  http.Header
	status  int
	body    bytes.Buffer
	emitted bool
	err     error // emit's
}

func (w *handoffWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *handoffWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *handoffWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.status == http.StatusOK && !w.emitted {
		if resp, ok := w.codec.take(b); ok {
			w.emitted = true
			w.err = w.emit(resp)
			return len(b), w.err
		}
	}
	return w.body.Write(b)
}

// result is the call's outcome: nil or emit's error when the answer was
// handed over, else the API's error as a gRPC status (statusOf).
func (w *handoffWriter) result() error {
	if w.emitted {
		return w.err
	}
	return statusOf(w.status, w.body.Bytes())
}

// statusOf turns an HTTP error answer into the gRPC status of the same
// refusal: the message is the answer's error text (the "error" of the API's
// JSON envelope, or a plain-text body), and the code is its ID's
// (apierror.ID.GRPCCode) when the text starts with one, else its
// errorType's, else its HTTP status's. It is the only place that picks a
// gRPC code for the query API.
func statusOf(httpStatus int, body []byte) error {
	var env struct {
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &env) == nil && env.Error != "" {
		msg = env.Error
	}
	if msg == "" {
		msg = http.StatusText(httpStatus)
	}
	code := apierror.StatusGRPCCode(httpStatus)
	if env.ErrorType != "" {
		code = apierror.ErrorTypeGRPCCode(env.ErrorType)
	}
	if id, _, ok := strings.Cut(msg, ":"); ok && strings.HasPrefix(id, apierror.Prefix) {
		if _, known := apierror.Lookup(apierror.ID(id)); known {
			code = apierror.ID(id).GRPCCode()
		}
	}
	if code == codes.OK || code == codes.Unknown {
		code = codes.Internal
	}
	return status.Error(code, msg)
}
