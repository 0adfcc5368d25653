package limits

import (
	"flag"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// defaultLimits returns the limits the flags default to.
func defaultLimits(t testing.TB) Limits {
	t.Helper()
	var l Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	return l
}

func TestLimits_DefaultsFromFlags(t *testing.T) {
	l := defaultLimits(t)
	require.Equal(t, Limits{
		IngestionRate:             10000,
		IngestionBurstSize:        200000,
		MaxGlobalSeriesPerUser:    150000,
		MaxGlobalSeriesPerMetric:  20000,
		MaxLabelNamesPerSeries:    30,
		MaxLabelNameLength:        1024,
		MaxLabelValueLength:       2048,
		CreationGracePeriod:       10 * time.Minute,
		MaxRecvMsgSize:            100 << 20,
		QueryTimeout:              2 * time.Minute,
		RetentionPeriod:           15 * 24 * time.Hour,
		HAClusterLabel:            "cluster",
		HAReplicaLabel:            "__replica__",
		HAMaxClusters:             100,
		MaxGlobalExemplarsPerUser: 100000,
		OTelTranslationStrategy:   "UnderscoreEscapingWithSuffixes",
	}, l)
	require.NoError(t, l.Validate())
}

func TestLimits_FlagNames(t *testing.T) {
	var l Limits
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	l.RegisterFlagsWithPrefix("x.", fs)
	require.NoError(t, fs.Parse([]string{
		"-x.distributor.ingestion-rate-limit=1.5",
		"-x.distributor.ingestion-burst-size=2",
		"-x.ingester.max-global-series-per-user=3",
		"-x.ingester.max-global-series-per-metric=4",
		"-x.validation.max-label-names-per-series=5",
		"-x.validation.max-length-label-name=6",
		"-x.validation.max-length-label-value=7",
		"-x.querier.max-fetched-series-per-query=8",
		"-x.querier.max-fetched-chunks-per-query=9",
		"-x.querier.max-query-length=10h",
		"-x.validation.create-grace-period=11m",
		"-x.distributor.max-recv-msg-size=12",
		"-x.querier.timeout=13s",
		"-x.ingester.retention-period=14h",
		"-x.distributor.ha-tracker.enable-for-all-users=true",
		"-x.distributor.ha-tracker.cluster=c",
		"-x.distributor.ha-tracker.replica=r",
		"-x.distributor.ha-tracker.max-clusters=15",
		"-x.ingester.max-global-exemplars-per-user=15",
		"-x.distributor.otel-promote-resource-attributes=service.name, k8s.pod.name",
		"-x.distributor.otel-translation-strategy=NoTranslation",
		"-x.distributor.otel-keep-identifying-resource-attributes",
		"-x.distributor.otel-convert-histograms-to-nhcb",
		"-x.distributor.otel-promote-scope-metadata",
		"-x.distributor.otel-native-delta-ingestion",
		"-x.ruler.max-rule-groups-per-tenant=16",
		"-x.ruler.max-rules-per-rule-group=17",
		"-x.ruler.tenant-alertmanager-url=dns+http://am:9093",
		"-x.ruler.external-labels=region=eu, env = prod",
	}))
	require.Equal(t, Limits{
		IngestionRate: 1.5, IngestionBurstSize: 2, MaxGlobalSeriesPerUser: 3, MaxGlobalSeriesPerMetric: 4,
		MaxLabelNamesPerSeries: 5, MaxLabelNameLength: 6, MaxLabelValueLength: 7,
		MaxFetchedSeriesPerQuery: 8, MaxFetchedChunksPerQuery: 9, MaxQueryLength: 10 * time.Hour, RetentionPeriod: 14 * time.Hour,
		CreationGracePeriod: 11 * time.Minute, MaxRecvMsgSize: 12, QueryTimeout: 13 * time.Second,
		AcceptHASamples: true, HAClusterLabel: "c", HAReplicaLabel: "r", HAMaxClusters: 15,
		MaxGlobalExemplarsPerUser:     15,
		PromoteOTelResourceAttributes: []string{"service.name", "k8s.pod.name"}, OTelTranslationStrategy: "NoTranslation",
		OTelKeepIdentifyingResourceAttributes: true, OTelConvertHistogramsToNHCB: true, OTelPromoteScopeMetadata: true, OTelNativeDeltaIngestion: true,
		RulerMaxRuleGroupsPerTenant: 16, RulerMaxRulesPerRuleGroup: 17,
		RulerAlertmanagerURL: "dns+http://am:9093", RulerExternalLabels: map[string]string{"region": "eu", "env": "prod"},
	}, l)
}

func TestLimits_Validate(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Limits)
		flag   string
	}{
		"negative rate":       {func(l *Limits) { l.IngestionRate = -1 }, "-distributor.ingestion-rate-limit"},
		"NaN rate":            {func(l *Limits) { l.IngestionRate = math.NaN() }, "-distributor.ingestion-rate-limit"},
		"bad ruler url":       {func(l *Limits) { l.RulerAlertmanagerURL = "dns+am:9093" }, "-ruler.tenant-alertmanager-url"},
		"bad external label":  {func(l *Limits) { l.RulerExternalLabels = map[string]string{"__name__": "y"} }, "-ruler.external-labels"},
		"negative burst":      {func(l *Limits) { l.IngestionBurstSize = -1 }, "-distributor.ingestion-burst-size"},
		"negative per user":   {func(l *Limits) { l.MaxGlobalSeriesPerUser = -1 }, "-ingester.max-global-series-per-user"},
		"negative per metric": {func(l *Limits) { l.MaxGlobalSeriesPerMetric = -1 }, "-ingester.max-global-series-per-metric"},
		"zero label names":    {func(l *Limits) { l.MaxLabelNamesPerSeries = 0 }, "-validation.max-label-names-per-series"},
		"zero name length":    {func(l *Limits) { l.MaxLabelNameLength = 0 }, "-validation.max-length-label-name"},
		"zero value length":   {func(l *Limits) { l.MaxLabelValueLength = 0 }, "-validation.max-length-label-value"},
		"negative grace":      {func(l *Limits) { l.CreationGracePeriod = -time.Second }, "-validation.create-grace-period"},
		"negative fetched":    {func(l *Limits) { l.MaxFetchedSeriesPerQuery = -1 }, "-querier.max-fetched-series-per-query"},
		"negative chunks":     {func(l *Limits) { l.MaxFetchedChunksPerQuery = -1 }, "-querier.max-fetched-chunks-per-query"},
		"negative query len":  {func(l *Limits) { l.MaxQueryLength = -time.Second }, "-querier.max-query-length"},
		"zero timeout":        {func(l *Limits) { l.QueryTimeout = 0 }, "-querier.timeout"},
		"zero recv size":      {func(l *Limits) { l.MaxRecvMsgSize = 0 }, "-distributor.max-recv-msg-size"},
		"negative retention":  {func(l *Limits) { l.RetentionPeriod = -time.Hour }, "-ingester.retention-period"},
		"negative clusters":   {func(l *Limits) { l.HAMaxClusters = -1 }, "-distributor.ha-tracker.max-clusters"},
		"same HA labels":      {func(l *Limits) { l.AcceptHASamples, l.HAReplicaLabel = true, "cluster" }, "-distributor.ha-tracker.replica"},
		"empty HA label":      {func(l *Limits) { l.AcceptHASamples, l.HAClusterLabel = true, "" }, "-distributor.ha-tracker.replica"},
		"negative exemplars":  {func(l *Limits) { l.MaxGlobalExemplarsPerUser = -1 }, "-ingester.max-global-exemplars-per-user"},
		"negative ooo window": {func(l *Limits) { l.OutOfOrderTimeWindow = -time.Hour }, "-ingester.out-of-order-time-window"},
		"unknown strategy":    {func(l *Limits) { l.OTelTranslationStrategy = "Escape" }, "-distributor.otel-translation-strategy"},
	} {
		t.Run(name, func(t *testing.T) {
			l := defaultLimits(t)
			tc.mutate(&l)
			err := l.Validate()
			require.ErrorIs(t, err, ErrInvalidLimit)
			require.ErrorContains(t, err, tc.flag)
		})
	}
}

func TestLimits_Fields(t *testing.T) {
	l := defaultLimits(t)
	f := l.Fields()
	require.Len(t, f, 31)
	require.Equal(t, "0s", f["out_of_order_time_window"])
	require.Equal(t, false, f["partial_response"])
	require.Equal(t, 10000.0, f["ingestion_rate"])
	require.Equal(t, 150000, f["max_global_series_per_user"])
	require.Equal(t, "10m0s", f["creation_grace_period"])
	require.Equal(t, "0s", f["max_query_length"])
	require.Equal(t, "360h0m0s", f["retention_period"])
}

func TestFieldOfFlag(t *testing.T) {
	require.Equal(t, "ingestion_rate", FieldOfFlag("distributor.ingestion-rate-limit"))
	require.Equal(t, "max_label_value_length", FieldOfFlag("validation.max-length-label-value"))
	require.Equal(t, "query_timeout", FieldOfFlag("querier.timeout"))
	require.Equal(t, "", FieldOfFlag("querier.max-concurrent"))
	fs := newFlagSet(&Limits{})
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		require.NotEmpty(t, FieldOfFlag(f.Name), f.Name)
		n++
	})
	l := defaultLimits(t)
	require.Len(t, l.Fields(), n, "every field has a flag")
}
