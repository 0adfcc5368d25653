package distributor

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

// Remote-write 1.0 and 2.0 protobuf message names, as sent in the proto
// parameter of the Content-Type.
const (
	protoRW1 = "prometheus.WriteRequest"
	protoRW2 = "io.prometheus.write.v2.Request"
)

// PushHandler returns the handler of the Prometheus remote-write endpoints
// (/api/v1/push, /api/v1/write, /api/v1/receive), 1.0 and 2.0 negotiated by
// the Content-Type (see admit). It expects the tenant in the request context
// (the auth middleware, internal/auth) and answers:
//
//   - 204 No Content once every valid series is in the WAL of a write
//     quorum (ReplicationFactor/2+1) of its replicas, as Prometheus's own
//     receiver answers (an empty request included);
//   - 400 with a text/plain body listing the rejected series when any series
//     or sample was not stored (see quorum.go for replicas that disagree);
//     the rest of the request was;
//   - 400, 405, 415 or 401 when the request itself is unacceptable;
//   - to remote write 2.0, with the X-Prometheus-Remote-Write-*-Written
//     headers counting what was stored (see writtenStats);
//   - 503 when the ring has too few healthy replicas for a series, and 500
//     or 503 when failed ingester pushes left a series without a quorum:
//     the sender retries the request.
//
// See DESIGN.md for every case. The handler is safe for concurrent use; it
// blocks until every series has its outcome, at most
// -distributor.remote-timeout: a quorum of its replicas stored it, or it
// cannot be stored (see pushBatches for the replicas still pushing then).
func (d *Distributor) PushHandler() http.Handler {
	return http.HandlerFunc(d.servePush)
}

func (d *Distributor) servePush(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var st writtenStats
	tenantID, err := tenant.FromContext(r.Context())
	if err == nil {
		var release func()
		if release, err = d.inflight.admit(r); err == nil {
			err = d.handlePush(r, tenantID, &st)
			release()
		}
	}
	code := httpStatusFor(err)
	if st.rw2 {
		st.setHeaders(w, code)
	}
	respond(w, code, tenantID, err)
	d.logOutcome(tenantID, code, err)
	d.metrics.pushDuration.WithLabelValues(strconv.Itoa(code)).Observe(time.Since(start).Seconds())
}

// handlePush runs the pipeline of one push and returns its one outcome: nil
// when everything was stored. It counts what was stored in st.
func (d *Distributor) handlePush(r *http.Request, tenantID string, st *writtenStats) error {
	tm := d.metrics.forTenant(tenantID, d.now())
	tm.receivedRequests.Inc()
	kind, err := admit(r)
	if err != nil {
		return err
	}
	st.rw2 = kind == pushRW2
	lim := d.limits.For(tenantID)
	wc := getWriteCtx()
	defer d.release(wc) // The outcome is formatted; stragglers may still hold wc.
	wc.rej.reset(d.cfg.MaxErrorsInResponse)
	if err := wc.readBody(r, lim.MaxRecvMsgSize); err != nil {
		return err
	}
	if kind == pushRW2 {
		// Symbolised series are forwarded as they came, but for the HA
		// tracker, which cuts the replica label out of 1.0 bytes.
		err = wc.decodeRW2(lim.MaxRecvMsgSize, d.ha == nil || !lim.AcceptHASamples)
		tm.receivedSamples.Add(float64(wc.rw2.rejectedSamples))
	} else {
		err = wc.decode(lim.MaxRecvMsgSize)
	}
	if err != nil {
		return err
	}
	return d.pushDecoded(r.Context(), wc, tenantID, tm, lim, st)
}

// pushDecoded runs the pipeline from validation on, over the series read
// into wc, and counts what was stored in st.
func (d *Distributor) pushDecoded(ctx context.Context, wc *writeCtx, tenantID string, tm *tenantMetrics, lim *limits.Limits, st *writtenStats) error {
	if d.ha != nil && lim.AcceptHASamples {
		if err := d.dedupeHA(wc, tenantID, lim); err != nil {
			return err // 202 for a replica that is not elected
		}
	}
	toPush, err := d.validate(wc, tenantID, tm, lim)
	if err != nil {
		return err
	}
	if toPush > 0 {
		if err := d.admitRate(tenantID, lim, toPush, func() string { return formatLabels(wc.labelsOf(0)) }); err != nil {
			tm.discarded[reasonRateLimited].Add(float64(toPush))
			return err
		}
	}
	if err := d.shard(wc, tenantID); err != nil {
		return err
	}
	d.pushBatches(ctx, tenantID, wc)
	ingesterRejected, err := d.settle(wc, tm)
	if err != nil {
		return err
	}
	// Only a final answer counts what validation refused: a 429 or a 5xx is
	// retried whole, and the retry counts it then.
	wc.countInvalid(tm)
	st.count(wc)
	return wc.rej.err(max(int64(toPush)-ingesterRejected, 0))
}

// pushKind is the message a push carries, named by its Content-Type.
type pushKind uint8

const (
	pushRW1 pushKind = iota
	pushRW2
)

// admit checks what the headers of a push promise, before its body is read:
// POST, snappy, remote-write 1.0 or 2.0 (the proto parameter of the
// Content-Type, as the remote-write 2.0 specification negotiates it). An
// absent Content-Encoding or Content-Type, or a Content-Type without proto,
// is remote-write 1.0, as Prometheus's receiver takes it.
func admit(r *http.Request) (pushKind, error) {
	if r.Method != http.MethodPost {
		return 0, fmt.Errorf("%w: %s, a push is a POST", ErrMethodNotAllowed, r.Method)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		return 0, fmt.Errorf("%w: %q, only snappy is accepted", ErrUnsupportedEncoding, enc)
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return pushRW1, nil
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrUnsupportedContentType, ct, err)
	}
	if media != "application/x-protobuf" {
		return 0, fmt.Errorf("%w: %q, expected application/x-protobuf", ErrUnsupportedContentType, ct)
	}
	switch params["proto"] {
	case "", protoRW1:
		return pushRW1, nil
	case protoRW2:
		return pushRW2, nil
	default:
		return 0, fmt.Errorf("%w: %q, expected proto=%s or proto=%s", ErrUnsupportedContentType, ct, protoRW1, protoRW2)
	}
}

// respond writes the one answer of a push. Every error body starts with the
// error ID, then the tenant when it is known (see docs/errors.md); a 429
// carries Retry-After in whole seconds.
func respond(w http.ResponseWriter, code int, tenantID string, err error) {
	if err == nil {
		w.WriteHeader(code)
		return
	}
	setErrorHeaders(w, code, err)
	http.Error(w, errorBody(tenantID, err), code)
}

// setErrorHeaders sets the headers of an error answer: Allow on a 405,
// Retry-After on a 429 or a 503.
func setErrorHeaders(w http.ResponseWriter, code int, err error) {
	setRetryAfter(w, code)
	switch code {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	case http.StatusTooManyRequests:
		if rl, ok := errors.AsType[*rateLimitedError](err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(rl.retryAfter/time.Second)))
		}
	}
}

// errorBody is the answer to err: its error ID, the tenant when it is known,
// then its message (see docs/errors.md).
func errorBody(tenantID string, err error) string {
	msg := strings.TrimPrefix(err.Error(), string(errorID(err))+": ") // An *apierror.Error starts with its ID.
	if tenantID == "" {
		return string(errorID(err)) + ": " + msg
	}
	return fmt.Sprintf("%s: tenant %q: %s", errorID(err), tenantID, msg)
}

// logOutcome logs a failed push: a 5xx as a warning, at most once per
// ingester and interval (the sender retries it; the metric counts them all),
// any other failure at debug level (the sender sees it in the response body).
func (d *Distributor) logOutcome(tenantID string, code int, err error) {
	switch {
	case err == nil:
	case code >= http.StatusInternalServerError:
		key := ""
		if ie, ok := errors.AsType[*ingesterError](err); ok {
			key = ie.addr
		}
		if d.warns.allow(key, time.Now()) {
			d.logger.Warn("push failed, the sender will retry", "tenant", tenantID, "status", code, "err", err,
				"see_metric", "argus_distributor_ingester_push_failures_total")
		}
	default:
		d.logger.Debug("push rejected", "tenant", tenantID, "status", code, "err", err)
	}
}
