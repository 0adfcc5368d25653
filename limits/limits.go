package limits

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Limits are the limits of one tenant. The defaults, which every tenant
// gets unless the runtime config file overrides them, are set in one place:
// RegisterFlagsWithPrefix. A count of 0 means unlimited where the field says
// so.
//
// A *Limits handed out by Overrides.For is shared and read-only: callers must
// not modify it. It stays valid (and unchanged) after a reload, which swaps
// in new values rather than editing old ones.
type Limits struct {
	// IngestionRate is the samples per second a tenant may push, across all
	// distributors.
	IngestionRate float64 `yaml:"ingestion_rate"`
	// IngestionBurstSize is the most samples a tenant may push at once above
	// IngestionRate (the token bucket's size).
	IngestionBurstSize int `yaml:"ingestion_burst_size"`
	// MaxGlobalSeriesPerUser is the most in-memory series a tenant may have
	// across the cluster, before replication. 0 means unlimited.
	MaxGlobalSeriesPerUser int `yaml:"max_global_series_per_user"`
	// MaxGlobalSeriesPerMetric is the most in-memory series one metric name
	// of a tenant may have across the cluster, before replication. 0 means
	// unlimited.
	MaxGlobalSeriesPerMetric int `yaml:"max_global_series_per_metric"`
	// MaxLabelNamesPerSeries is the most labels, __name__ included, a series
	// may have.
	MaxLabelNamesPerSeries int `yaml:"max_label_names_per_series"`
	// MaxLabelNameLength is the longest label name, in bytes.
	MaxLabelNameLength int `yaml:"max_label_name_length"`
	// MaxLabelValueLength is the longest label value, in bytes.
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// CreationGracePeriod is how far after the distributor's clock a sample's
	// timestamp may be; later samples are rejected as too far in the future.
	CreationGracePeriod time.Duration `yaml:"creation_grace_period"`
	// MaxRecvMsgSize bounds, in bytes, both the compressed body of a push and
	// its snappy-decoded size.
	MaxRecvMsgSize int `yaml:"max_recv_msg_size"`

	// MaxFetchedSeriesPerQuery is the most series one query may fetch from
	// ingesters and storage. 0 means unlimited.
	MaxFetchedSeriesPerQuery int `yaml:"max_fetched_series_per_query"`
	// MaxFetchedChunksPerQuery is the most chunks one query may fetch from
	// ingesters and storage. 0 means unlimited.
	MaxFetchedChunksPerQuery int `yaml:"max_fetched_chunks_per_query"`
	// MaxQueryLength is the longest time range (end minus start) a query may
	// select. 0 means unlimited.
	MaxQueryLength time.Duration `yaml:"max_query_length"`
	// QueryTimeout is the longest a query of the tenant may run.
	QueryTimeout time.Duration `yaml:"query_timeout"`

	// RetentionPeriod is how long the ingesters keep the tenant's samples,
	// measured from the wall clock: older ones are refused and deleted. 0
	// keeps them for ever.
	RetentionPeriod time.Duration `yaml:"retention_period"`
	// PartialResponse answers the tenant's queries whose ingesters failed
	// beyond what the replication tolerates with what the others hold and a
	// warning naming the failed ones, instead of a 503. A request's
	// partial_response parameter overrides it.
	PartialResponse bool `yaml:"partial_response"`

	// AcceptHASamples deduplicates the tenant's Prometheus HA pairs: of the
	// replicas of one cluster, only the elected one's samples are stored
	// (see the distributor's HA tracker). It needs
	// -distributor.ha-tracker.enable.
	AcceptHASamples bool `yaml:"accept_ha_samples"`
	// HAClusterLabel is the label naming a tenant's HA cluster; it is kept.
	HAClusterLabel string `yaml:"ha_cluster_label"`
	// HAReplicaLabel is the label naming the replica within its cluster; it
	// is removed from the samples accepted.
	HAReplicaLabel string `yaml:"ha_replica_label"`
	// HAMaxClusters is the most HA clusters the tenant may have. 0 means
	// unlimited.
	HAMaxClusters int `yaml:"ha_max_clusters"`
	// MaxGlobalExemplarsPerUser is the most exemplars a tenant keeps in
	// memory across the cluster, before replication: each ingester keeps
	// its share (× replication factor / healthy ingesters) in a ring
	// buffer that overwrites the oldest. 0 disables exemplars.
	MaxGlobalExemplarsPerUser int `yaml:"max_global_exemplars_per_user"`
	// OutOfOrderTimeWindow is how far before the newest sample of the
	// tenant's head (on each ingester) a sample older than its series'
	// newest is still accepted and merged. 0 refuses them as out of order.
	OutOfOrderTimeWindow time.Duration `yaml:"out_of_order_time_window"`
	// PromoteOTelResourceAttributes are the OTLP resource attributes copied
	// onto every series of their resource as labels (all are kept in
	// target_info).
	PromoteOTelResourceAttributes []string `yaml:"promote_otel_resource_attributes"`
	// OTelTranslationStrategy is how OTLP metric and attribute names become
	// Prometheus names, as Prometheus's otlp.translation_strategy:
	// UnderscoreEscapingWithSuffixes (its default), UnderscoreEscapingWithoutSuffixes,
	// NoUTF8EscapingWithSuffixes or NoTranslation.
	OTelTranslationStrategy string `yaml:"otel_translation_strategy"`
	// OTelKeepIdentifyingResourceAttributes keeps service.name,
	// service.namespace and service.instance.id in target_info as well as in
	// job and instance.
	OTelKeepIdentifyingResourceAttributes bool `yaml:"otel_keep_identifying_resource_attributes"`
	// OTelConvertHistogramsToNHCB stores OTLP explicit-bucket histograms as
	// native histograms with custom buckets instead of classic ones.
	OTelConvertHistogramsToNHCB bool `yaml:"otel_convert_histograms_to_nhcb"`
	// OTelPromoteScopeMetadata adds the OTLP instrumentation scope's name,
	// version, schema URL and attributes to its series as otel_scope_* labels.
	OTelPromoteScopeMetadata bool `yaml:"otel_promote_scope_metadata"`
	// OTelNativeDeltaIngestion stores OTLP delta sums and histograms as they
	// come, with metadata type unknown, as Prometheus's native delta
	// ingestion does; otherwise they are refused.
	OTelNativeDeltaIngestion bool `yaml:"otel_native_delta_ingestion"`
	// RulerMaxRuleGroupsPerTenant bounds the rule groups a tenant may store
	// in the ruler, over all namespaces; 0 means unlimited.
	RulerMaxRuleGroupsPerTenant int `yaml:"ruler_max_rule_groups_per_tenant"`
	// RulerMaxRulesPerRuleGroup bounds the rules of one rule group; 0 means
	// unlimited.
	RulerMaxRulesPerRuleGroup int `yaml:"ruler_max_rules_per_rule_group"`
	// RulerAlertmanagerURL, if set, replaces -ruler.alertmanager-url for the
	// tenant's alerts (the same comma-separated list, dns+ and dnssrv+
	// included).
	RulerAlertmanagerURL string `yaml:"ruler_alertmanager_url"`
	// RulerExternalLabels are added to the tenant's alerts and to the
	// results of its recording rules (ALERTS included), each unless the
	// series has that label already, as Prometheus's external labels.
	RulerExternalLabels map[string]string `yaml:"ruler_external_labels"`
}

// labelsFlag is a flag of comma-separated name=value pairs.
type labelsFlag map[string]string

func (v *labelsFlag) String() string {
	var out []string
	for k, val := range *v {
		out = append(out, k+"="+val)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func (v *labelsFlag) Set(s string) error {
	m := map[string]string{}
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("%q is not name=value", f)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	*v = m
	return nil
}

// OTel translation strategies (OTelTranslationStrategy), Prometheus's names.
var otelTranslationStrategies = []string{
	"UnderscoreEscapingWithSuffixes", "UnderscoreEscapingWithoutSuffixes", "NoUTF8EscapingWithSuffixes", "NoTranslation",
}

// stringSliceCSV is a flag of comma-separated strings.
type stringSliceCSV []string

func (v *stringSliceCSV) String() string { return strings.Join(*v, ",") }

func (v *stringSliceCSV) Set(s string) error {
	*v = nil
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*v = append(*v, f)
		}
	}
	return nil
}

// RegisterFlags registers the default limits, with their Mimir names, on f.
func (l *Limits) RegisterFlags(f *flag.FlagSet) {
	l.RegisterFlagsWithPrefix("", f)
}

// RegisterFlagsWithPrefix registers the default limits on f, each name
// prefixed with prefix. The defaults set here are the only defaults; they
// are Mimir's.
func (l *Limits) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.Float64Var(&l.IngestionRate, prefix+"distributor.ingestion-rate-limit", 10000,
		"Per-tenant ingestion rate limit, in samples per second, shared by the healthy distributors. 0 means unlimited. With -target=all the default is 0: the all-in-one serves one user, whose Prometheus it must not throttle.")
	f.IntVar(&l.IngestionBurstSize, prefix+"distributor.ingestion-burst-size", 200000,
		"Per-tenant number of samples that may be pushed at once above the ingestion rate limit.")
	f.IntVar(&l.MaxGlobalSeriesPerUser, prefix+"ingester.max-global-series-per-user", 150000,
		"Per-tenant limit of in-memory series across the cluster, before replication. 0 means unlimited. With -target=all the default is 0.")
	f.IntVar(&l.MaxGlobalSeriesPerMetric, prefix+"ingester.max-global-series-per-metric", 20000,
		"Per-tenant limit of in-memory series of one metric name across the cluster, before replication. 0 means unlimited. With -target=all the default is 0.")
	f.IntVar(&l.MaxLabelNamesPerSeries, prefix+"validation.max-label-names-per-series", 30,
		"Most label names, __name__ included, a series may have.")
	f.IntVar(&l.MaxLabelNameLength, prefix+"validation.max-length-label-name", 1024,
		"Longest label name accepted, in bytes.")
	f.IntVar(&l.MaxLabelValueLength, prefix+"validation.max-length-label-value", 2048,
		"Longest label value accepted, in bytes.")
	f.DurationVar(&l.CreationGracePeriod, prefix+"validation.create-grace-period", 10*time.Minute,
		"How far in the future of the distributor's clock a sample's timestamp may be. Later samples are rejected.")
	f.IntVar(&l.MaxRecvMsgSize, prefix+"distributor.max-recv-msg-size", 100<<20,
		"Largest push accepted, in bytes, both compressed and once snappy-decoded. A larger push is answered 400, so that the sender drops it instead of retrying it forever.")
	f.DurationVar(&l.QueryTimeout, prefix+"querier.timeout", 2*time.Minute,
		"Longest a query may run before it is aborted.")
	f.IntVar(&l.MaxFetchedSeriesPerQuery, prefix+"querier.max-fetched-series-per-query", 0,
		"Most series a single query may fetch from ingesters and storage. 0 means unlimited.")
	f.IntVar(&l.MaxFetchedChunksPerQuery, prefix+"querier.max-fetched-chunks-per-query", 0,
		"Most chunks a single query may fetch from ingesters and storage. 0 means unlimited.")
	f.DurationVar(&l.MaxQueryLength, prefix+"querier.max-query-length", 0,
		"Longest time range a query may select. 0 means unlimited.")
	f.DurationVar(&l.RetentionPeriod, prefix+"ingester.retention-period", 15*24*time.Hour,
		"Per-tenant retention: samples older than this (from the wall clock) are refused and deleted from the ingesters' memory, WAL and disk. 0 keeps them for ever.")

	f.BoolVar(&l.PartialResponse, prefix+"querier.partial-response", false,
		"Answer a query whose ingesters failed beyond what the replication factor tolerates with the data of the others and a warning naming the failed ones, instead of a 503. A request's partial_response=true|false overrides it.")

	f.BoolVar(&l.AcceptHASamples, prefix+"distributor.ha-tracker.enable-for-all-users", false,
		"Deduplicate the samples of Prometheus HA pairs: of the replicas of one cluster, store only the elected replica's samples and answer the others 202. Needs -distributor.ha-tracker.enable.")
	f.StringVar(&l.HAClusterLabel, prefix+"distributor.ha-tracker.cluster", "cluster",
		"Label naming the HA cluster of a Prometheus HA pair (its external label). It is kept on the samples stored.")
	f.StringVar(&l.HAReplicaLabel, prefix+"distributor.ha-tracker.replica", "__replica__",
		"Label naming the replica within its HA cluster (its external label). It is removed from the samples stored.")
	f.IntVar(&l.HAMaxClusters, prefix+"distributor.ha-tracker.max-clusters", 100,
		"Most HA clusters a tenant may have; a push from one more is refused with 400. 0 means unlimited.")
	f.IntVar(&l.MaxGlobalExemplarsPerUser, prefix+"ingester.max-global-exemplars-per-user", 100000,
		"Per-tenant limit of exemplars kept in memory across the cluster, before replication; each ingester keeps its share in a ring buffer that overwrites the oldest. 0 disables exemplars.")
	f.DurationVar(&l.OutOfOrderTimeWindow, prefix+"ingester.out-of-order-time-window", 0,
		"Per-tenant window, back from the newest sample an ingester holds for the tenant, inside which a sample older than its series' newest is accepted and merged in order. 0 refuses such samples as out of order. The last window of every series stays in the ingesters' memory.")
	f.Var((*stringSliceCSV)(&l.PromoteOTelResourceAttributes), prefix+"distributor.otel-promote-resource-attributes",
		"Comma-separated OTLP resource attributes to add to every series of their resource as labels. All resource attributes are kept in target_info.")
	f.StringVar(&l.OTelTranslationStrategy, prefix+"distributor.otel-translation-strategy", otelTranslationStrategies[0],
		"How OTLP metric and attribute names become Prometheus names, as Prometheus's otlp.translation_strategy: UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes or NoTranslation.")
	f.BoolVar(&l.OTelKeepIdentifyingResourceAttributes, prefix+"distributor.otel-keep-identifying-resource-attributes", false,
		"Keep the OTLP resource attributes service.name, service.namespace and service.instance.id in target_info, besides job and instance.")
	f.BoolVar(&l.OTelConvertHistogramsToNHCB, prefix+"distributor.otel-convert-histograms-to-nhcb", false,
		"Store OTLP explicit-bucket histograms as native histograms with custom buckets instead of classic _bucket, _sum and _count series.")
	f.BoolVar(&l.OTelPromoteScopeMetadata, prefix+"distributor.otel-promote-scope-metadata", false,
		"Add the OTLP instrumentation scope's name, version, schema URL and attributes to its series as otel_scope_* labels.")
	f.BoolVar(&l.OTelNativeDeltaIngestion, prefix+"distributor.otel-native-delta-ingestion", false,
		"Store OTLP delta sums and histograms as they come, with metadata type unknown (Prometheus's native delta ingestion). When false, delta metrics are refused and named in the answer's partial success.")
	// Mimir's defaults are 70 and 20; 0 here, so that a Prometheus rule
	// file moved to Argus as it is is never refused for its size.
	f.IntVar(&l.RulerMaxRuleGroupsPerTenant, prefix+"ruler.max-rule-groups-per-tenant", 0,
		"Most rule groups a tenant may store in the ruler, over all namespaces; a POST of one more group is refused with 400. 0 means unlimited.")
	f.IntVar(&l.RulerMaxRulesPerRuleGroup, prefix+"ruler.max-rules-per-rule-group", 0,
		"Most rules one rule group of a tenant may have; a POST of a larger group is refused with 400. 0 means unlimited.")
	f.StringVar(&l.RulerAlertmanagerURL, prefix+"ruler.tenant-alertmanager-url", "",
		"Alertmanager URLs of a tenant's alerts, in the form of -ruler.alertmanager-url, which they replace; empty means -ruler.alertmanager-url. Meant for the runtime config file (ruler_alertmanager_url).")
	f.Var((*labelsFlag)(&l.RulerExternalLabels), prefix+"ruler.external-labels",
		"Comma-separated name=value labels added to a tenant's alerts and recording-rule results, each unless the series has it already (Prometheus's external labels). A map in the runtime config file (ruler_external_labels).")
}

// Validate reports every invalid limit of l, joined. Each error matches
// ErrInvalidLimit and names the limit by its flag.
func (l *Limits) Validate() error {
	var errs []error
	check := func(bad bool, flag string, value any, reason string) {
		if bad {
			errs = append(errs, invalidLimitError{flag: flag, value: value, reason: reason})
		}
	}
	check(!(l.IngestionRate >= 0), "distributor.ingestion-rate-limit", l.IngestionRate, "must not be negative")
	check(l.IngestionBurstSize < 0, "distributor.ingestion-burst-size", l.IngestionBurstSize, "must not be negative")
	check(l.MaxGlobalSeriesPerUser < 0, "ingester.max-global-series-per-user", l.MaxGlobalSeriesPerUser, "must not be negative")
	check(l.MaxGlobalSeriesPerMetric < 0, "ingester.max-global-series-per-metric", l.MaxGlobalSeriesPerMetric, "must not be negative")
	check(l.MaxLabelNamesPerSeries <= 0, "validation.max-label-names-per-series", l.MaxLabelNamesPerSeries, "must be positive")
	check(l.MaxLabelNameLength <= 0, "validation.max-length-label-name", l.MaxLabelNameLength, "must be positive")
	check(l.MaxLabelValueLength <= 0, "validation.max-length-label-value", l.MaxLabelValueLength, "must be positive")
	check(l.CreationGracePeriod < 0, "validation.create-grace-period", l.CreationGracePeriod, "must not be negative")
	check(l.MaxFetchedSeriesPerQuery < 0, "querier.max-fetched-series-per-query", l.MaxFetchedSeriesPerQuery, "must not be negative")
	check(l.MaxFetchedChunksPerQuery < 0, "querier.max-fetched-chunks-per-query", l.MaxFetchedChunksPerQuery, "must not be negative")
	check(l.MaxQueryLength < 0, "querier.max-query-length", l.MaxQueryLength, "must not be negative")
	check(l.MaxRecvMsgSize <= 0, "distributor.max-recv-msg-size", l.MaxRecvMsgSize, "must be positive")
	check(l.QueryTimeout <= 0, "querier.timeout", l.QueryTimeout, "must be positive")
	check(l.RetentionPeriod < 0, "ingester.retention-period", l.RetentionPeriod, "must not be negative")
	check(l.HAMaxClusters < 0, "distributor.ha-tracker.max-clusters", l.HAMaxClusters, "must not be negative")
	check(l.AcceptHASamples && (l.HAClusterLabel == "" || l.HAReplicaLabel == "" || l.HAClusterLabel == l.HAReplicaLabel),
		"distributor.ha-tracker.replica", l.HAReplicaLabel, "and -distributor.ha-tracker.cluster must be two distinct non-empty label names")
	check(l.MaxGlobalExemplarsPerUser < 0, "ingester.max-global-exemplars-per-user", l.MaxGlobalExemplarsPerUser, "must not be negative")
	check(l.OutOfOrderTimeWindow < 0, "ingester.out-of-order-time-window", l.OutOfOrderTimeWindow, "must not be negative")
	check(l.RulerMaxRuleGroupsPerTenant < 0, "ruler.max-rule-groups-per-tenant", l.RulerMaxRuleGroupsPerTenant, "must not be negative")
	check(l.RulerMaxRulesPerRuleGroup < 0, "ruler.max-rules-per-rule-group", l.RulerMaxRulesPerRuleGroup, "must not be negative")
	for k := range l.RulerExternalLabels {
		check(!model.LabelName(k).IsValid() || k == model.MetricNameLabel, "ruler.external-labels", k, "must be valid label names other than __name__")
	}
	check(!validAlertmanagerURLs(l.RulerAlertmanagerURL), "ruler.tenant-alertmanager-url", l.RulerAlertmanagerURL, "must be comma-separated http(s) URLs, each optionally prefixed dns+ or dnssrv+")
	check(!slices.Contains(otelTranslationStrategies, l.OTelTranslationStrategy), "distributor.otel-translation-strategy",
		l.OTelTranslationStrategy, "must be one of "+strings.Join(otelTranslationStrategies, ", "))
	return errors.Join(errs...)
}

// validAlertmanagerURLs reports whether list is a valid
// -ruler.alertmanager-url list (empty included); the ruler parses it.
func validAlertmanagerURLs(list string) bool {
	for s := range strings.SplitSeq(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		s = strings.TrimPrefix(strings.TrimPrefix(s, "dnssrv+"), "dns+")
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return false
		}
	}
	return true
}

// Fields returns the limits as their runtime config fields (the yaml names)
// to values: numbers, and durations as Go duration strings ("10m0s"). It is
// what /api/v1/user_limits shows.
func (l *Limits) Fields() map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(l).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		switch f := v.Field(i).Interface().(type) {
		case time.Duration:
			out[name] = f.String()
		default:
			out[name] = f
		}
	}
	return out
}

// FieldOfFlag returns the runtime config field (its yaml name) that
// overrides the limit of flag (without its leading dash), or "" if flag is
// not a limit. The mapping is read from the flag registrations themselves:
// each flag's value points at the field it sets.
func FieldOfFlag(flag string) string {
	var l Limits
	fs := newFlagSet(&l)
	f := fs.Lookup(flag)
	if f == nil {
		return ""
	}
	target := reflect.ValueOf(f.Value).Pointer()
	v := reflect.ValueOf(&l).Elem()
	for i := range v.NumField() {
		if v.Field(i).Addr().Pointer() == target {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			return name
		}
	}
	return ""
}

// newFlagSet returns a flag set with the limits of l registered.
func newFlagSet(l *Limits) *flag.FlagSet {
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	l.RegisterFlags(fs)
	return fs
}
