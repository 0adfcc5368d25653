package ruler

import (
	"net/url"

	"github.com/prometheus/prometheus/rules"
)

// TenantView is one tenant's rules and Alertmanagers as the Prometheus API
// (web/api/v1's RulesRetriever and AlertmanagerRetriever) reads them. It is
// safe for concurrent use.
type TenantView struct {
	t *tenantRules // nil: nothing evaluated here
}

// RuleGroups returns the tenant's groups this ruler evaluates.
func (v *TenantView) RuleGroups() []*rules.Group {
	if v.t == nil {
		return nil
	}
	return v.t.manager.RuleGroups()
}

// AlertingRules returns the tenant's alerting rules this ruler evaluates.
func (v *TenantView) AlertingRules() []*rules.AlertingRule {
	if v.t == nil {
		return nil
	}
	return v.t.manager.AlertingRules()
}

// Alertmanagers returns the Alertmanagers the tenant's alerts go to.
func (v *TenantView) Alertmanagers() []*url.URL {
	if v.t == nil || v.t.notifier == nil {
		return nil
	}
	return v.t.notifier.Alertmanagers()
}

// DroppedAlertmanagers returns none: the URLs are static.
func (*TenantView) DroppedAlertmanagers() []*url.URL { return nil }
