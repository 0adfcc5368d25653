package auth

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/argus-tsdb/argus/internal/apierror"
	"github.com/argus-tsdb/argus/internal/filereload"
)

// Values of the outcome label of argus_auth_requests_total.
const (
	outcomeOK            = "ok"
	outcomeMissingTenant = "missing_tenant"
	outcomeInvalidTenant = "invalid_tenant"
	outcomeUnauthorized  = "unauthorized"
	outcomeForbidden     = "forbidden"
	// outcomeNotReady counts requests refused with a 500 because the token
	// file was not loaded yet (the process is starting).
	outcomeNotReady = "not_ready"
)

// metrics are the authenticator's metrics. None carries a tenant label:
// unauthenticated input must not create series.
type metrics struct {
	ok, missingTenant, invalidTenant, unauthorized, forbidden, notReady prometheus.Counter

	// reload are the token file's, which filereload updates. Registered
	// with -auth.type=token only; nil otherwise.
	reload *filereload.Metrics
}

func newMetrics(reg prometheus.Registerer, tokenFile bool) *metrics {
	f := promauto.With(reg)
	requests := f.NewCounterVec(prometheus.CounterOpts{
		Name: "argus_auth_requests_total",
		Help: "HTTP requests through the auth middleware, by outcome (ok, missing_tenant, invalid_tenant, unauthorized, forbidden, not_ready); forbidden is a valid token that is not an admin one on the admin API.",
	}, []string{"outcome"})
	// Every outcome exists at zero from the start.
	m := &metrics{
		ok:            requests.WithLabelValues(outcomeOK),
		missingTenant: requests.WithLabelValues(outcomeMissingTenant),
		invalidTenant: requests.WithLabelValues(outcomeInvalidTenant),
		unauthorized:  requests.WithLabelValues(outcomeUnauthorized),
		forbidden:     requests.WithLabelValues(outcomeForbidden),
		notReady:      requests.WithLabelValues(outcomeNotReady),
	}
	if !tokenFile {
		return m
	}
	m.reload = filereload.NewMetrics(reg, prometheus.GaugeOpts{
		Name: "argus_auth_token_file_last_reload_successful",
		Help: "1 if the last load of the token file succeeded, 0 if it failed and the last good file is still in force.",
	}, prometheus.CounterOpts{
		Name: "argus_auth_token_file_reloads_total",
		Help: "Loads of the token file (-auth.token-file), by status (success, failure).",
	})
	return m
}

// refused counts a request refused with id.
func (m *metrics) refused(id apierror.ID) {
	switch id {
	case apierror.MissingTenant:
		m.missingTenant.Inc()
	case apierror.InvalidTenant:
		m.invalidTenant.Inc()
	case apierror.Unauthorized:
		m.unauthorized.Inc()
	case apierror.AdminForbidden:
		m.forbidden.Inc()
	default:
		m.notReady.Inc()
	}
}
