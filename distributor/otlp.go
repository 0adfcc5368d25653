package distributor

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/tenant"
	"github.com/argus-tsdb/argus/limits"
)

// OTLP metrics over HTTP (OTLP/HTTP, protobuf or JSON, gzip or not) are
// translated by Prometheus's own translator (storage/remote/otlptranslator,
// the code behind Prometheus's --web.enable-otlp-receiver) into the
// remote-write 1.0 form, through otlpAppender, and then pushed exactly as a
// remote-write request is: the same validation, limits, sharding, quorum
// and error IDs. The answer is OTLP's: 200 with an
// ExportMetricsServiceResponse, whose partial_success counts and names what
// was refused, or an error status with a google.rpc.Status body.

// otlpFormat is the encoding of an OTLP request and of its answer.
type otlpFormat uint8

const (
	otlpProtobuf otlpFormat = iota
	otlpJSON
)

func (f otlpFormat) contentType() string {
	if f == otlpJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// lookbackDelta is the PromQL lookback delta target_info's samples are
// spaced by, the querier's and Prometheus's default.
const lookbackDelta = 5 * time.Minute

// ErrDecodeOTLP means the body is not a valid OTLP ExportMetricsServiceRequest.
var ErrDecodeOTLP = errors.New("decode OTLP request")

// converterPool holds Prometheus's OTLP converters, which keep a bounded
// cache of sanitized label names between requests.
var converterPool = sync.Pool{New: func() any { return prometheusremotewrite.NewPrometheusConverter(nil) }}

// OTLPHandler returns the handler of OTLP metrics over HTTP
// (/otlp/v1/metrics, Mimir's path, and /api/v1/otlp/v1/metrics,
// Prometheus's). It expects the tenant in the request context, as
// PushHandler does, and answers:
//
//   - 200 with an empty ExportMetricsServiceResponse once every data point
//     is stored as PushHandler stores a series;
//   - 200 with partial_success when some were refused (invalid series,
//     ingester rejections, delta temporality the tenant does not take):
//     rejected_data_points counts the Prometheus samples refused (a
//     histogram data point is several) plus the refused delta data points,
//     error_message lists them with their err-argus-* IDs; the rest was
//     stored;
//   - 400, 401, 405, 415, 429, 500 or 503 as PushHandler does for a whole
//     request, with a google.rpc.Status body in the request's encoding.
//
// It is safe for concurrent use and blocks as PushHandler does.
func (d *Distributor) OTLPHandler() http.Handler {
	return http.HandlerFunc(d.serveOTLP)
}

// otlpOutcome is the partial success of an OTLP push.
type otlpOutcome struct {
	format   otlpFormat
	rejected int64
	messages []string
}

func (d *Distributor) serveOTLP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var out otlpOutcome
	if strings.Contains(r.Header.Get("Content-Type"), "json") {
		out.format = otlpJSON
	}
	tenantID, err := tenant.FromContext(r.Context())
	if err == nil {
		var release func()
		if release, err = d.inflight.admit(r); err == nil {
			err = d.handleOTLP(r, tenantID, &out)
			release()
		}
	}
	code := http.StatusOK
	if err != nil {
		code = httpStatusFor(err)
		respondOTLPError(w, code, out.format, err, errorBody(tenantID, err))
	} else {
		respondOTLP(w, out)
	}
	d.logOutcome(tenantID, code, err)
	d.metrics.pushDuration.WithLabelValues(strconv.Itoa(code)).Observe(time.Since(start).Seconds())
}

// handleOTLP decodes, translates and pushes one OTLP request. Refusals of
// part of it are recorded in out; the error is a whole request's.
func (d *Distributor) handleOTLP(r *http.Request, tenantID string, out *otlpOutcome) error {
	tm := d.metrics.forTenant(tenantID, d.now())
	tm.receivedRequests.Inc()
	format, err := admitOTLP(r)
	if err != nil {
		return err
	}
	out.format = format
	lim := d.limits.For(tenantID)
	wc := getWriteCtx()
	defer d.release(wc)
	wc.rej.reset(d.cfg.MaxErrorsInResponse)
	md, err := wc.decodeOTLP(r, format, lim.MaxRecvMsgSize)
	if err != nil {
		return err
	}
	refused, names := refusedTemporality(md, lim)
	if refused > 0 {
		out.rejected += refused
		out.messages = append(out.messages, temporalityMessage(tenantID, refused, names))
		tm.discarded[reasonOTLPTemporality].Add(float64(refused))
	}
	if err := wc.translateOTLP(r.Context(), md, lim); errors.Is(err, ErrDecodedTooLarge) {
		return err
	} else if err != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: tenant %q: some metrics could not be translated and were left out", apierror.OTLPTranslation, tenantID)
		for _, e := range unjoin(err) {
			fmt.Fprintf(&b, "\n%s: %s", apierror.OTLPTranslation, e)
		}
		out.messages = append(out.messages, b.String())
	}
	var st writtenStats
	err = d.pushDecoded(r.Context(), wc, tenantID, tm, lim, &st)
	if re, ok := errors.AsType[*rejectedError](err); ok {
		out.rejected += wc.rej.samples
		out.messages = append(out.messages, errorBody(tenantID, re))
		return nil
	}
	return err
}

// temporalityMessage is the partial-success message of the data points
// refused for their temporality: a summary, then one line per metric, each
// with the error ID, as the remote-write 400 body lists series.
func temporalityMessage(tenantID string, points int64, names []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: tenant %q: %d data points refused for their temporality", apierror.OTLPDeltaTemporality, tenantID, points)
	for _, n := range names {
		fmt.Fprintf(&b, "\n%s: %s temporality refused under %s: send cumulative temporality, or ingest delta as it comes",
			apierror.OTLPDeltaTemporality, n, apierror.LimitText("distributor.otel-native-delta-ingestion", false))
	}
	return b.String()
}

// admitOTLP checks the headers of an OTLP push: POST, protobuf or JSON,
// gzip or no compression.
func admitOTLP(r *http.Request) (otlpFormat, error) {
	if r.Method != http.MethodPost {
		return 0, fmt.Errorf("%w: %s, a push is a POST", ErrMethodNotAllowed, r.Method)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "gzip") {
		return 0, fmt.Errorf("%w: %q, OTLP is accepted gzip-compressed or uncompressed", ErrUnsupportedEncoding, enc)
	}
	ct := r.Header.Get("Content-Type")
	media, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrUnsupportedContentType, ct, err)
	}
	switch media {
	case "application/x-protobuf":
		return otlpProtobuf, nil
	case "application/json":
		return otlpJSON, nil
	default:
		return 0, fmt.Errorf("%w: %q, expected application/x-protobuf or application/json", ErrUnsupportedContentType, ct)
	}
}

// decodeOTLP reads the body of r, gunzips it if needed, into wc.rw2buf and
// decodes it. Both the compressed and the decompressed body are bounded by
// limit.
func (wc *writeCtx) decodeOTLP(r *http.Request, format otlpFormat, limit int) (pmetric.Metrics, error) {
	if err := wc.readBody(r, limit); err != nil {
		return pmetric.Metrics{}, err
	}
	raw := wc.body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(wc.body))
		if err != nil {
			return pmetric.Metrics{}, fmt.Errorf("%w: gzip: %w", ErrDecodeOTLP, err)
		}
		buf := bytes.NewBuffer(wc.rw2buf[:0])
		n, err := io.Copy(buf, io.LimitReader(zr, int64(limit)+1))
		wc.rw2buf = buf.Bytes()
		if err != nil {
			return pmetric.Metrics{}, fmt.Errorf("%w: gzip: %w", ErrDecodeOTLP, err)
		}
		if n > int64(limit) {
			return pmetric.Metrics{}, fmt.Errorf("%w: the gzip body decompresses to more than -distributor.max-recv-msg-size=%d bytes", ErrDecodedTooLarge, limit)
		}
		raw = wc.rw2buf
	}
	req := pmetricotlp.NewExportRequest()
	var err error
	if format == otlpJSON {
		err = req.UnmarshalJSON(raw)
	} else {
		err = req.UnmarshalProto(raw)
	}
	if err != nil {
		return pmetric.Metrics{}, fmt.Errorf("%w: %w", ErrDecodeOTLP, err)
	}
	return req.Metrics(), nil
}

// translateOTLP translates md with Prometheus's converter, under the
// tenant's OTel settings, into wc.decoded (the remote-write 1.0 form) and
// reads it in place into wc.series. It returns the translator's errors
// (metrics it could not translate, each skipped), joined.
func (wc *writeCtx) translateOTLP(ctx context.Context, md pmetric.Metrics, lim *limits.Limits) error {
	if wc.otlp == nil {
		wc.otlp = newOTLPAppender()
	}
	app := wc.otlp
	app.limit = maxOTLPSamples(md)
	conv := converterPool.Get().(*prometheusremotewrite.PrometheusConverter)
	conv.Reset(app)
	strategy := otlptranslator.TranslationStrategyOption(lim.OTelTranslationStrategy)
	_, translateErr := conv.FromMetrics(ctx, md, prometheusremotewrite.Settings{
		AddMetricSuffixes: strategy.ShouldAddSuffixes(),
		AllowUTF8:         !strategy.ShouldEscape(),
		PromoteResourceAttributes: prometheusremotewrite.NewPromoteResourceAttributes(config.OTLPConfig{
			PromoteResourceAttributes: lim.PromoteOTelResourceAttributes,
		}),
		KeepIdentifyingResourceAttributes:    lim.OTelKeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:              lim.OTelConvertHistogramsToNHCB,
		PromoteScopeMetadata:                 lim.OTelPromoteScopeMetadata,
		AllowDeltaTemporality:                lim.OTelNativeDeltaIngestion,
		LookbackDelta:                        lookbackDelta,
		LabelNameUnderscoreSanitization:      true, // Prometheus's defaults
		LabelNamePreserveMultipleUnderscores: true,
	})
	conv.Reset(nil)
	converterPool.Put(conv)
	if errors.Is(translateErr, errTooManyOTLPSamples) {
		limit := app.limit
		app.reset()
		return fmt.Errorf("%w: its translation makes more than %d samples: data points of one resource span more than %d target_info intervals (lookback delta / 2), or a data point makes more samples than it holds",
			ErrDecodedTooLarge, limit, maxTargetInfoSamples)
	}
	translateErr = withoutTemporalityErrors(translateErr)
	wc.decoded = app.encode(wc.decoded[:0])
	app.reset()
	if err := wc.unmarshalRequest(wc.decoded); err != nil {
		return fmt.Errorf("%w: translated OTLP: %w", ErrDecodeProtobuf, err) // A bug: the encoding is ours.
	}
	return translateErr
}

// withoutTemporalityErrors drops from err the translator's refusals of
// delta and unspecified temporality, which refusedTemporality reported
// with their data points.
func withoutTemporalityErrors(err error) error {
	if err == nil {
		return nil
	}
	var kept []error
	for _, e := range unjoin(err) {
		if !strings.HasPrefix(e.Error(), "invalid temporality and type combination") {
			kept = append(kept, e)
		}
	}
	return errors.Join(kept...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// refusedTemporality counts the data points of the metrics in md that the
// translator refuses for their temporality: delta, unless the tenant
// ingests it natively, and unspecified. It returns their count and the
// names of their metrics (at most 10).
func refusedTemporality(md pmetric.Metrics, lim *limits.Limits) (points int64, names []string) {
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				var temp pmetric.AggregationTemporality
				var n int
				switch m.Type() {
				case pmetric.MetricTypeSum:
					temp, n = m.Sum().AggregationTemporality(), m.Sum().DataPoints().Len()
				case pmetric.MetricTypeHistogram:
					temp, n = m.Histogram().AggregationTemporality(), m.Histogram().DataPoints().Len()
				case pmetric.MetricTypeExponentialHistogram:
					temp, n = m.ExponentialHistogram().AggregationTemporality(), m.ExponentialHistogram().DataPoints().Len()
				default:
					continue
				}
				if temp == pmetric.AggregationTemporalityCumulative ||
					(temp == pmetric.AggregationTemporalityDelta && lim.OTelNativeDeltaIngestion) || n == 0 {
					continue
				}
				points += int64(n)
				if len(names) < 10 {
					names = append(names, fmt.Sprintf("%q: %s", m.Name(), strings.ToLower(temp.String())))
				}
			}
		}
	}
	return points, names
}

// respondOTLP writes the 200 answer of an OTLP push: an
// ExportMetricsServiceResponse, with partial_success when something was
// refused.
func respondOTLP(w http.ResponseWriter, out otlpOutcome) {
	resp := pmetricotlp.NewExportResponse()
	if len(out.messages) > 0 {
		ps := resp.PartialSuccess()
		ps.SetRejectedDataPoints(out.rejected)
		ps.SetErrorMessage(strings.Join(out.messages, "\n"))
	}
	var body []byte
	var err error
	if out.format == otlpJSON {
		body, err = resp.MarshalJSON()
	} else {
		body, err = resp.MarshalProto()
	}
	if err != nil {
		respondOTLPError(w, http.StatusInternalServerError, out.format, err, fmt.Sprintf("%s: encode OTLP response: %v", apierror.Internal, err))
		return
	}
	w.Header().Set("Content-Type", out.format.contentType())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// respondOTLPError writes the OTLP answer to err: a google.rpc.Status whose
// message is msg (the error ID first), in the request's encoding, with the
// headers of PushHandler's answer (Retry-After, which OTLP clients honour).
func respondOTLPError(w http.ResponseWriter, code int, format otlpFormat, err error, msg string) {
	st := &spb.Status{Code: int32(grpcCodeFor(code)), Message: msg}
	var body []byte
	if format == otlpJSON {
		body, _ = protojson.Marshal(st)
	} else {
		body, _ = proto.Marshal(st)
	}
	setErrorHeaders(w, code, err)
	w.Header().Set("Content-Type", format.contentType())
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// grpcCodeFor is the gRPC code of an HTTP status, as OTLP/gRPC would
// answer it.
func grpcCodeFor(code int) codes.Code {
	switch code {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}
