package distributor

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// overloadRetryAfter is the Retry-After of a 503: an overloaded distributor
// or ingester, or one down, is worth retrying after about this long (the
// sender backs off further on its own).
const overloadRetryAfter = time.Second

// InstanceLimits bound what one distributor holds in flight, whatever the
// tenants, so that a push rate above what the ingesters take is refused
// with a retryable 503 instead of growing the distributor's memory (each
// push holds its body, decoded request and per-ingester batches until the
// ingesters answer). 0 disables a limit.
type InstanceLimits struct {
	MaxInflightPushRequests      int   `yaml:"max_inflight_push_requests"`
	MaxInflightPushRequestsBytes int64 `yaml:"max_inflight_push_requests_bytes"`
}

// RegisterFlagsWithPrefix registers the flags of l with their defaults.
func (l *InstanceLimits) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.IntVar(&l.MaxInflightPushRequests, prefix+"distributor.instance-limits.max-inflight-push-requests", 2000,
		"Most push requests the distributor handles at once; more are refused with a 503 and Retry-After. 0 means no limit.")
	f.Int64Var(&l.MaxInflightPushRequestsBytes, prefix+"distributor.instance-limits.max-inflight-push-requests-bytes", 0,
		"Most bytes (as sent, compressed) of the push requests the distributor handles at once; more are refused with a 503 and Retry-After. 0 means no limit.")
}

// validate reports an invalid setting of l.
func (l *InstanceLimits) validate() error {
	if l.MaxInflightPushRequests < 0 || l.MaxInflightPushRequestsBytes < 0 {
		return fmt.Errorf("-distributor.instance-limits.* must not be negative, got %+v", *l)
	}
	return nil
}

// inflight counts the pushes in flight and their bytes.
type inflight struct {
	limits   InstanceLimits
	requests atomic.Int64
	bytes    atomic.Int64
	refused  *prometheus.CounterVec // by limit
}

// newInflight returns the in-flight accounting of limits, its refusals
// counted on reg.
func newInflight(limits InstanceLimits, reg prometheus.Registerer) *inflight {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_distributor_instance_limit_refusals_total",
		Help: "Pushes refused by a -distributor.instance-limits.* limit, by limit.",
	}, []string{"limit"})
	for _, l := range []string{"max_inflight_push_requests", "max_inflight_push_requests_bytes"} {
		refused.WithLabelValues(l)
	}
	if reg != nil {
		reg.MustRegister(refused)
	}
	return &inflight{limits: limits, refused: refused}
}

// admit counts r in flight, or refuses it if that would pass a limit. Its
// size is its Content-Length (0 when unknown: the body is then bounded by
// -distributor.max-recv-msg-size alone). An admitted push must call the
// returned release once answered.
func (in *inflight) admit(r *http.Request) (release func(), err error) {
	size := max(r.ContentLength, 0)
	n := in.requests.Add(1)
	b := in.bytes.Add(size)
	release = func() {
		in.requests.Add(-1)
		in.bytes.Add(-size)
	}
	switch {
	case in.limits.MaxInflightPushRequests > 0 && n > int64(in.limits.MaxInflightPushRequests):
		release()
		in.refused.WithLabelValues("max_inflight_push_requests").Inc()
		return nil, apierror.Errorf(apierror.DistributorOverload, "%d push requests in flight (%s)",
			in.limits.MaxInflightPushRequests, apierror.LimitText("distributor.instance-limits.max-inflight-push-requests", in.limits.MaxInflightPushRequests))
	case in.limits.MaxInflightPushRequestsBytes > 0 && b > in.limits.MaxInflightPushRequestsBytes && n > 1:
		// n > 1: a single request larger than the limit is admitted alone,
		// so that it is refused by its size limit rather than retried for ever.
		release()
		in.refused.WithLabelValues("max_inflight_push_requests_bytes").Inc()
		return nil, apierror.Errorf(apierror.DistributorOverload, "%d bytes of push requests in flight (%s)",
			b-size, apierror.LimitText("distributor.instance-limits.max-inflight-push-requests-bytes", in.limits.MaxInflightPushRequestsBytes))
	}
	return release, nil
}

// setRetryAfter sets Retry-After on a 503: the distributor or an ingester is
// overloaded or down, and the same push may succeed a little later.
func setRetryAfter(w http.ResponseWriter, code int) {
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", fmt.Sprint(int(overloadRetryAfter/time.Second)))
	}
}

// ingesterErrorID returns the error ID an ingester put at the start of its
// gRPC error message (a refusal of a whole push: an instance limit, a failed
// tenant), if err is an ingester push failure with one.
func ingesterErrorID(err error) (apierror.ID, bool) {
	ie, ok := errors.AsType[*ingesterError](err)
	if !ok {
		return "", false
	}
	st, ok := status.FromError(ie.err)
	if !ok {
		return "", false
	}
	for _, id := range []apierror.ID{apierror.IngesterOverloaded, apierror.IngesterTenantFailed} {
		if strings.Contains(st.Message(), string(id)+": ") {
			return id, true
		}
	}
	return "", false
}
