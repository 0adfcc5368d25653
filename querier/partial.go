package querier

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Partial responses. A read whose ingesters failed beyond what the
// replication tolerates fails with err-argus-query-unavailable (503): its
// answer could miss acknowledged samples. A read that accepts a partial
// response (the request's partial_response=true, or the tenant's
// partial_response limit when the request does not say) answers instead
// from the ingesters that did answer, with a warning (in the API's
// "warnings") that names the ones that did not, as Thanos does. A read that
// no ingester answered still fails.

// ErrPartialResponse is the warning of a partial answer.
var ErrPartialResponse = errors.New("partial response")

type partialKey struct{}

// withPartialResponse puts the request's partial_response parameter, when
// it has a valid one, in the request context; an invalid one is left to the
// API, which ignores unknown parameters, so it is ignored too.
func withPartialResponse(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.FormValue("partial_response"); v != "" {
			if on, err := strconv.ParseBool(v); err == nil {
				r = r.WithContext(context.WithValue(r.Context(), partialKey{}, on))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// partialAllowed reports whether the read of ctx accepts a partial answer:
// the request's choice, else its tenant's limit (from the query budget in
// ctx), else no.
func partialAllowed(ctx context.Context) bool {
	if on, ok := ctx.Value(partialKey{}).(bool); ok {
		return on
	}
	if b := budgetFrom(ctx); b != nil && b.limits != nil {
		return b.limits.PartialResponse
	}
	return false
}

// warnedSeriesSet adds warnings to a series set.
type warnedSeriesSet struct {
	storage.ChunkSeriesSet
	warnings annotations.Annotations
}

func (s warnedSeriesSet) Warnings() annotations.Annotations {
	return s.warnings.Merge(s.ChunkSeriesSet.Warnings())
}
