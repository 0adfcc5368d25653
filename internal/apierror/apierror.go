// Package apierror is Argus's error contract: every error a client of the
// HTTP API can get, each with a stable ID (err-argus-<name>), the HTTP status
// it is answered with, whether the client should retry, and what to do about
// it. It is the one table of statuses: the distributor and the querier map
// their errors to an ID, and the ID to a status, through it.
// docs/errors.md is generated from Catalogue (a test keeps it current).
//
// The rules behind the statuses, for a Prometheus remote-write sender:
//
//   - a request, series or sample that can never be stored as sent (invalid
//     data, over a per-tenant series limit) is a 4xx: the sender drops it
//     instead of retrying it forever;
//   - a request over the tenant's ingestion rate is a 429 with Retry-After:
//     the same request succeeds later (Prometheus retries it when
//     queue_config.retry_on_http_429 is true);
//   - a request that fails because Argus is degraded (too few healthy
//     ingesters, an ingester overloaded or down) is a 5xx: the sender retries.
//
// Nothing here is safe to change once published: IDs are part of the API.
package apierror

import (
	"errors"
	"fmt"
	"net/http"
)

// ID names an error for good. It is printed first in every error message.
type ID string

// Prefix starts every ID.
const Prefix = "err-argus-"

// Scope says what an error refuses.
type Scope string

const (
	// ScopeRequest errors refuse a whole request.
	ScopeRequest Scope = "request"
	// ScopeSeries errors refuse one series of a push, or some of its
	// samples; the rest of the push is stored, and the 400 lists the series.
	// An OTLP push answers them instead with 200 and OTLP's partial_success,
	// whose error_message lists them.
	ScopeSeries Scope = "series"
	// ScopeQuery errors refuse a read (query, series, labels).
	ScopeQuery Scope = "query"
	// ScopeAdmin errors refuse an admin call (delete_series,
	// clean_tombstones) or a statistics read (status/tsdb, cardinality).
	// Their bodies are Prometheus's JSON error envelope, as for ScopeQuery.
	ScopeAdmin Scope = "statistics or admin request"
)

// Tenant and authentication.
const (
	MissingTenant ID = "err-argus-missing-tenant"
	InvalidTenant ID = "err-argus-invalid-tenant"
	Unauthorized  ID = "err-argus-unauthorized"
)

// Whole push requests.
const (
	MethodNotAllowed     ID = "err-argus-method-not-allowed"
	UnsupportedMediaType ID = "err-argus-unsupported-media-type"
	RequestTooLarge      ID = "err-argus-request-too-large"
	MalformedRequest     ID = "err-argus-malformed-request"
	IngestionRateLimited ID = "err-argus-ingestion-rate-limited"
	TooFewIngesters      ID = "err-argus-too-few-ingesters"
	IngesterUnavailable  ID = "err-argus-ingester-unavailable"
	IngesterFailed       ID = "err-argus-ingester-failed"
	IngesterTenantFailed ID = "err-argus-ingester-tenant-failed"
	IngesterOverloaded   ID = "err-argus-ingester-instance-limit"
	DistributorOverload  ID = "err-argus-distributor-instance-limit"
	NotReady             ID = "err-argus-not-ready"
	Internal             ID = "err-argus-internal"
)

// Series of a push.
const (
	MissingMetricName      ID = "err-argus-missing-metric-name"
	InvalidMetricName      ID = "err-argus-invalid-metric-name"
	InvalidLabelName       ID = "err-argus-invalid-label-name"
	InvalidLabelValue      ID = "err-argus-invalid-label-value"
	DuplicateLabelNames    ID = "err-argus-duplicate-label-names"
	MaxLabelNamesPerSeries ID = "err-argus-max-label-names-per-series"
	LabelNameTooLong       ID = "err-argus-label-name-too-long"
	LabelValueTooLong      ID = "err-argus-label-value-too-long"
	TooFarInFuture         ID = "err-argus-too-far-in-future"
	InvalidNativeHistogram ID = "err-argus-invalid-native-histogram"
	SampleOutOfOrder       ID = "err-argus-sample-out-of-order"
	SampleDuplicate        ID = "err-argus-sample-duplicate-timestamp"
	SampleTooOld           ID = "err-argus-sample-too-old"
	IngesterInvalidLabels  ID = "err-argus-ingester-invalid-labels"
	IngesterRejected       ID = "err-argus-ingester-rejected"
	MaxSeriesPerUser       ID = "err-argus-max-series-per-user"
	MaxSeriesPerMetric     ID = "err-argus-max-series-per-metric"
	RW2InvalidReference    ID = "err-argus-rw2-invalid-symbol-reference"
	OTLPDeltaTemporality   ID = "err-argus-otlp-delta-temporality"
	OTLPTranslation        ID = "err-argus-otlp-translation"
)

// Exemplars and metadata entries of a push.
const (
	InvalidExemplar           ID = "err-argus-invalid-exemplar"
	ExemplarMissingTimestamp  ID = "err-argus-exemplar-missing-timestamp"
	ExemplarLabelsTooLong     ID = "err-argus-exemplar-labels-too-long"
	InvalidMetadata           ID = "err-argus-invalid-metadata"
	MetadataMissingMetricName ID = "err-argus-metadata-missing-metric-name"
	MetadataTooLong           ID = "err-argus-metadata-too-long"
)

// Reads.
const (
	MaxFetchedSeriesPerQuery ID = "err-argus-max-fetched-series-per-query"
	MaxFetchedChunksPerQuery ID = "err-argus-max-fetched-chunks-per-query"
	MaxQueryLength           ID = "err-argus-max-query-length"
	QueryTimeout             ID = "err-argus-query-timeout"
	QueryUnavailable         ID = "err-argus-query-unavailable"
	BadQuery                 ID = "err-argus-bad-query"
	QueryFailed              ID = "err-argus-query-failed"
	QueryCanceled            ID = "err-argus-query-canceled"
)

// Admin and statistics requests.
const (
	AdminAPIDisabled     ID = "err-argus-admin-api-disabled"
	AdminForbidden       ID = "err-argus-admin-forbidden"
	InvalidDeleteRequest ID = "err-argus-invalid-delete-request"
	InvalidStatsRequest  ID = "err-argus-invalid-stats-request"
	AdminPartialFailure  ID = "err-argus-admin-partial-failure"
	StatsUnavailable     ID = "err-argus-stats-unavailable"
)

// HA deduplication of a push (the distributor's HA tracker).
const (
	HAReplicaNotElected ID = "err-argus-ha-replica-not-elected"
	TooManyHAClusters   ID = "err-argus-too-many-ha-clusters"
)

// The scraper's configuration.
const (
	InvalidScrapeConfig ID = "err-argus-invalid-scrape-config"
)

// The ruler's configuration API.
const (
	InvalidRuleGroup  ID = "err-argus-invalid-rule-group"
	RuleGroupNotFound ID = "err-argus-rule-group-not-found"
	TooManyRuleGroups ID = "err-argus-too-many-rule-groups"
	TooManyRules      ID = "err-argus-too-many-rules-per-rule-group"
	RulerUnavailable  ID = "err-argus-ruler-unavailable"
)

// Paths and endpoints of the HTTP API.
const (
	NotFound         ID = "err-argus-not-found"
	NotSupported     ID = "err-argus-not-supported"
	InvalidParameter ID = "err-argus-invalid-parameter"
)

// Entry is the contract of one ID.
type Entry struct {
	ID     ID
	Status int
	Scope  Scope
	// Flag is the flag (and runtime config field) of the limit in force, if
	// the error enforces one.
	Flag string
	// Retry says whether the same request may succeed later unchanged.
	Retry bool
	// Meaning says what happened; Action what the client or operator does.
	Meaning, Action string
}

// Catalogue is every error ID, in the order docs/errors.md lists them.
var Catalogue = []Entry{
	{MissingTenant, 401, ScopeRequest, "", false,
		"The request has no X-Scope-OrgID header (and, with -auth.type=token, no token that names a single tenant).",
		"Send the tenant in X-Scope-OrgID. A single-tenant deployment can run with -auth.multitenancy-enabled=false."},
	{InvalidTenant, 401, ScopeRequest, "", false,
		"The tenant ID is longer than 150 bytes, is \".\" or \"..\", has a character outside [a-zA-Z0-9!-_.*'()], or names several tenants (a|b) where that is not allowed: in a push, or in a read without -tenant-federation.enabled.",
		"Fix the tenant ID. Federated reads over several tenants need -tenant-federation.enabled=true."},
	{Unauthorized, 401, ScopeRequest, "", false,
		"With -auth.type=token: the request has no bearer token, or its token is not one of the tenant's (a wrong token, or another tenant's). Nothing was read or written.",
		"Send Authorization: Bearer <token> with a token listed for the tenant in -auth.token-file (in Prometheus: remote_write.authorization.credentials)."},

	{MethodNotAllowed, 405, ScopeRequest, "", false,
		"A push was not a POST, or an admin call (delete_series, clean_tombstones) neither a POST nor a PUT, or a statistics request (status/tsdb, cardinality) neither a GET nor a POST.", "Use the method the endpoint takes."},
	{UnsupportedMediaType, 415, ScopeRequest, "", false,
		"The push is not snappy-compressed remote-write protobuf: another Content-Encoding, another Content-Type, or a proto parameter naming neither remote write 1.0 (prometheus.WriteRequest) nor 2.0 (io.prometheus.write.v2.Request).",
		"Send remote write 1.0 or 2.0 as Prometheus does (protobuf_message: prometheus.WriteRequest or io.prometheus.write.v2.Request)."},
	{RequestTooLarge, 400, ScopeRequest, "distributor.max-recv-msg-size", false,
		"The push body, compressed or once decoded, is larger than the tenant's limit. It is a 400, not a 413, so that Prometheus drops the batch instead of retrying it forever.",
		"Send smaller batches (queue_config.max_samples_per_send), or raise the limit for the tenant."},
	{MalformedRequest, 400, ScopeRequest, "", false,
		"The body could not be read, is not valid snappy, or is not a valid WriteRequest (remote write 1.0) or Request (2.0) protobuf; or the symbol table of a remote-write 2.0 request does not start with the empty string, as the specification requires.",
		"Fix the sender; the request can never be stored."},
	{IngestionRateLimited, 429, ScopeRequest, "distributor.ingestion-rate-limit", true,
		"The tenant pushes more samples per second than its ingestion rate limit (shared by all healthy distributors), beyond its burst (-distributor.ingestion-burst-size). Nothing of the request was stored. The Retry-After header says when it fits.",
		"Retry after Retry-After seconds; Prometheus does with queue_config.retry_on_http_429: true (its default is false, which drops the batch). Or raise the tenant's limit."},
	{TooFewIngesters, 503, ScopeRequest, "", true,
		"The ring has fewer healthy ingesters for some series than a write quorum (replication factor / 2 + 1). Nothing was pushed.",
		"Retry (Prometheus does). Operators: bring ingesters back; see /ring."},
	{IngesterUnavailable, 503, ScopeRequest, "", true,
		"Some series were not acknowledged by a write quorum of their ingesters, which were unreachable, overloaded or slow.",
		"Retry (Prometheus does). Samples that did land are accepted again as duplicates."},
	{IngesterFailed, 500, ScopeRequest, "", true,
		"Some series were not acknowledged by a write quorum of their ingesters, and an ingester failed with an error that is not transient (a WAL write error, for example).",
		"Retry (Prometheus does). Operators: the ingester's log says what failed."},
	{IngesterTenantFailed, 503, ScopeRequest, "", true,
		"An ingester refused the tenant's push because the tenant's storage on it failed: a flush of its chunks to the DB failed. Other tenants are not affected. The ingester retries the flush every -ingester.flush-period and accepts the tenant again once one succeeds; argus_ingester_tenant_failed names the tenant and its /ingester/tenants page says why.",
		"Retry (Prometheus does). Operators: the ingester's log says what failed (a full or read-only disk, for example)."},
	{IngesterOverloaded, 503, ScopeRequest, "", true,
		"An ingester is over one of its instance limits (-ingester.instance-limits.max-inflight-push-requests or -ingester.instance-limits.max-series), whatever the tenant: it refuses work instead of growing its memory without bound. Nothing of the refused request was appended on that ingester.",
		"Retry later (Prometheus does, backing off). Operators: add ingesters or raise the limit if the machine has room."},
	{DistributorOverload, 503, ScopeRequest, "", true,
		"The distributor holds more push request bytes in flight than its instance limit (-distributor.instance-limits.max-inflight-push-requests, -distributor.instance-limits.max-inflight-push-requests-bytes): it refuses new pushes instead of growing its memory without bound. Nothing of the request was stored. The Retry-After header says when to retry.",
		"Retry after Retry-After seconds (Prometheus does, backing off). Operators: add distributors or raise the limit if the machine has room."},
	{NotReady, 503, ScopeRequest, "", true,
		"The process is starting (its token file is not loaded yet) or stopping.",
		"Retry (Prometheus does). Orchestrators: route traffic only to processes whose /ready answers 200."},
	{Internal, 500, ScopeRequest, "", true,
		"An unexpected error.", "Retry; report it if it persists."},

	{MissingMetricName, 400, ScopeSeries, "", false,
		"The series has no __name__ label, or an empty one.", "Fix the series' labels."},
	{InvalidMetricName, 400, ScopeSeries, "", false,
		"The metric name is not valid UTF-8.", "Fix the metric name."},
	{InvalidLabelName, 400, ScopeSeries, "", false,
		"A label name is empty or not valid UTF-8.", "Fix the label name."},
	{InvalidLabelValue, 400, ScopeSeries, "", false,
		"A label value is not valid UTF-8.", "Fix the label value."},
	{DuplicateLabelNames, 400, ScopeSeries, "", false,
		"A label name appears more than once in the series.", "Fix the series' labels (relabelling often causes this)."},
	{MaxLabelNamesPerSeries, 400, ScopeSeries, "validation.max-label-names-per-series", false,
		"The series has more labels, __name__ included, than the tenant's limit.", "Drop labels (metric_relabel_configs: labeldrop), or raise the limit."},
	{LabelNameTooLong, 400, ScopeSeries, "validation.max-length-label-name", false,
		"A label name is longer, in bytes, than the tenant's limit.", "Shorten the label name, or raise the limit."},
	{LabelValueTooLong, 400, ScopeSeries, "validation.max-length-label-value", false,
		"A label value is longer, in bytes, than the tenant's limit.", "Shorten the value (it is usually an unbounded one, such as a URL or an error text), or raise the limit."},
	{TooFarInFuture, 400, ScopeSeries, "validation.create-grace-period", false,
		"Some samples are later than the distributor's clock plus the grace period; only those samples were refused.", "Fix the sender's clock or timestamps."},
	{InvalidNativeHistogram, 400, ScopeSeries, "", false,
		"Some native histogram samples of the series do not decode or are inconsistent (spans that do not match the buckets, a count that is not the sum of the buckets, negative buckets, an unknown schema, custom bounds that are not increasing); only those samples were refused.", "Fix the sender's histogram encoding; Prometheus's own clients send valid histograms."},
	{SampleOutOfOrder, 400, ScopeSeries, "", false,
		"Some samples are older than the latest sample of their series (or than what it already persisted), and the tenant has no out_of_order_time_window (or they are older than the chunks its ingesters may still change). Exact duplicates of stored samples, in the ingesters' memory or persisted (retries), are accepted.", "Send each series' samples in time order, from one sender (check for duplicate senders without HA deduplication), or set out_of_order_time_window for the tenant."},
	{SampleDuplicate, 400, ScopeSeries, "", false,
		"A sample has the timestamp of a sample the series already holds (or of an earlier sample of the same push) but another value. Exact duplicates (retries) are accepted.", "Make sure one series comes from one sender."},
	{SampleTooOld, 400, ScopeSeries, "", false,
		"Some samples are older than the oldest time the tenant's head accepts: one hour (or out_of_order_time_window, if longer) before its newest sample; or, for a tenant with an out_of_order_time_window, older than their series' latest sample and than the window's start.", "Send old data promptly, or raise the tenant's out_of_order_time_window; backfilling beyond it is not supported."},
	{IngesterInvalidLabels, 400, ScopeSeries, "", false,
		"An ingester refused a label set the distributor accepted (a distributor and an ingester of different versions).", "Report it: upgrade distributors and ingesters together."},
	{IngesterRejected, 400, ScopeSeries, "", false,
		"An ingester refused samples without naming a reason this distributor knows (an ingester newer than the distributor).", "Report it: upgrade distributors and ingesters together."},
	{MaxSeriesPerUser, 400, ScopeSeries, "ingester.max-global-series-per-user", false,
		"The series is new and the tenant already has its limit of in-memory series. Each ingester enforces its share of the limit: limit × replication factor / healthy ingesters. The samples of existing series are stored. It is a 400, not a 429: retrying cannot help until series go idle.",
		"Reduce the tenant's series (drop high-cardinality labels), or raise the limit."},
	{MaxSeriesPerMetric, 400, ScopeSeries, "ingester.max-global-series-per-metric", false,
		"The series is new and its metric already has the tenant's limit of in-memory series, enforced per ingester like the per-user limit.",
		"Reduce the metric's cardinality, or raise the limit."},
	{InvalidExemplar, 400, ScopeSeries, "", false,
		"An exemplar does not decode, or has a label name that is empty, repeated or not valid UTF-8, or a value that is not valid UTF-8. Only that exemplar was dropped: its series' samples and other exemplars are stored.",
		"Fix the exemplar's labels in the instrumentation."},
	{ExemplarMissingTimestamp, 400, ScopeSeries, "", false,
		"An exemplar has no timestamp (0). Only that exemplar was dropped.",
		"Send exemplars with their timestamp (Prometheus always does)."},
	{ExemplarLabelsTooLong, 400, ScopeSeries, "", false,
		"An exemplar's labels, names and values together, hold more than 128 UTF-8 runes (the OpenMetrics bound Prometheus enforces). Only that exemplar was dropped.",
		"Shorten the exemplar's labels (a trace ID alone fits)."},
	{InvalidMetadata, 400, ScopeSeries, "", false,
		"A metric metadata entry does not decode, or its family name, help or unit is not valid UTF-8. Only that entry was dropped.",
		"Fix the sender."},
	{MetadataMissingMetricName, 400, ScopeSeries, "", false,
		"A metric metadata entry has no metric family name. Only that entry was dropped.",
		"Fix the sender."},
	{MetadataTooLong, 400, ScopeSeries, "", false,
		"A metric metadata entry's family name, help or unit is longer than 1024 bytes. Only that entry was dropped.",
		"Shorten the metric's help text."},
	{RW2InvalidReference, 400, ScopeSeries, "", false,
		"A remote-write 2.0 series has an odd number of label references, or a label, exemplar or metadata reference past the request's symbol table. The series was left out; the rest of the request was stored. The answer shows the labels that resolve, a bad one as <ref N>.",
		"Fix the sender: every reference must index the request's symbols, and labels come as name and value pairs."},
	{OTLPDeltaTemporality, 400, ScopeSeries, "distributor.otel-native-delta-ingestion", false,
		"OTLP sums or histograms with delta temporality (the tenant does not ingest delta natively) or with unspecified temporality. Their data points were refused and counted in the answer's partial_success (rejected_data_points), which names the metrics; the rest of the request was stored.",
		"Send cumulative temporality (in the OpenTelemetry SDKs, the default temporality selector; in the collector, the deltatocumulative processor), or store delta as it comes with -distributor.otel-native-delta-ingestion=true for the tenant."},
	{OTLPTranslation, 400, ScopeSeries, "", false,
		"Prometheus's OTLP translator could not translate some metrics (an unsupported metric type, or a name that cannot become a Prometheus name); they were left out and named in the answer's partial_success. The rest of the request was stored.",
		"Fix the metrics the message names."},

	{MaxFetchedSeriesPerQuery, 422, ScopeQuery, "querier.max-fetched-series-per-query", false,
		"The query selects more distinct series than the tenant's limit. The querier stops fetching as soon as one ingester's answer exceeds it, so its memory stays bounded.",
		"Narrow the selectors (add label matchers), or raise the limit."},
	{MaxFetchedChunksPerQuery, 422, ScopeQuery, "querier.max-fetched-chunks-per-query", false,
		"The query fetches more chunks than the tenant's limit, counting every replica's chunks as received.",
		"Narrow the selectors or the time range, or raise the limit."},
	{MaxQueryLength, 400, ScopeQuery, "querier.max-query-length", false,
		"A selector of the query spans more time than the tenant's limit: the query's range plus the lookback delta, or its widest range selector.",
		"Query a shorter time range, or raise the limit."},
	{QueryTimeout, 503, ScopeQuery, "querier.timeout", true,
		"The query ran longer than the tenant's timeout and was aborted; or it ran past the caller's own timeout (the API's timeout parameter, a gRPC deadline), which Prometheus's API answers with errorType timeout and its own text after the ID (\"query timed out in expression evaluation\").", "Simplify the query or its range, or raise the timeout (the caller's, if the text does not name -querier.timeout)."},
	{QueryUnavailable, 503, ScopeQuery, "", true,
		"Too many ingesters of the read set were unreachable for an exact answer.", "Retry, or ask for partial_response=true to get what the reachable ingesters hold, with a warning naming the others. Operators: see /ring."},
	{BadQuery, 400, ScopeQuery, "", false,
		"A request of the Prometheus query API has a PromQL expression that does not parse or a parameter that is missing or invalid (a time, a step, a match[] selector, a limit); Prometheus's API answers it with errorType bad_data, and Argus keeps that JSON envelope and Prometheus's own text after the ID.",
		"Fix the query or the parameter: the text after the ID is Prometheus's and says which and where."},
	{QueryFailed, 422, ScopeQuery, "", false,
		"The query parsed but its evaluation failed (errorType execution): for example a many-to-many match, a vector that cannot be matched, a series source that refused the request as invalid, or more samples in memory at once than -querier.max-samples (\"query processing would load too many samples into memory\"). The text after the ID is the engine's (Prometheus's) error.",
		"Change the query as the message says (for example add on()/ignoring() or group_left/group_right); retrying the same query fails the same way."},
	{QueryCanceled, 499, ScopeQuery, "", false,
		"The query was canceled before it finished because its caller canceled the request or closed the connection (Prometheus's errorType canceled and its status 499, gRPC Canceled). Only a caller that still listens sees it, for example through a proxy that canceled on its own deadline.",
		"Nothing is wrong with the query. If the caller did not mean to give up, raise its timeout (Grafana's data source timeout, the proxy's); the tenant's own limit answers err-argus-query-timeout instead."},

	{AdminAPIDisabled, 403, ScopeAdmin, "", false,
		"A call to /prometheus/api/v1/admin/tsdb/delete_series or clean_tombstones while the admin API is off (its default). Nothing was deleted.",
		"Operators: start the queriers with -api.enable-admin-api=true (and, with -auth.type=token, mark the token admin)."},
	{AdminForbidden, 403, ScopeRequest, "", false,
		"With -auth.type=token: the bearer token is valid for the tenant but is not marked admin: true in -auth.token-file, and only admin tokens may call the admin API. Nothing was deleted.",
		"Use an admin token for the tenant, or mark the token admin: true in the token file."},
	{InvalidDeleteRequest, 400, ScopeAdmin, "", false,
		"A delete_series call without match[], with a selector that does not parse or whose matchers all match the empty value (it would select every series), or with a start or end that does not parse or a start after the end. Nothing was deleted.",
		"Fix the parameters. To delete all of a tenant's data, use match[]={__name__=~\".+\"}."},
	{InvalidStatsRequest, 400, ScopeAdmin, "", false,
		"A status/tsdb or cardinality request with a limit that is not a positive integer or is over its maximum, a selector that does not parse, or (label_values) no label_names[].",
		"Fix the parameters."},
	{AdminPartialFailure, 503, ScopeAdmin, "", true,
		"Some ingester holding the tenant (any replica) failed or could not be reached, so the deletion or the tombstone clean-up is not done everywhere. The ingesters that answered have recorded it; reads may still show the deleted data from the others.",
		"Retry the same call until it answers 204: it is idempotent. Operators: see /ring."},
	{StatsUnavailable, 503, ScopeAdmin, "", true,
		"Some ingester of the ring could not be reached, so the statistics, which add up every ingester's head, would be wrong.",
		"Retry. Operators: see /ring."},

	{HAReplicaNotElected, 202, ScopeRequest, "", false,
		"Not a refusal: the push comes from a replica of a Prometheus HA pair (its cluster and replica labels, read on the first series) that is not the cluster's elected replica, while the elected one is sending. Its samples were dropped, as duplicates of the elected replica's, and counted in argus_distributor_deduped_samples_total. The other replica is elected once the elected one has sent nothing for -distributor.ha-tracker.failover-timeout.",
		"Nothing: Prometheus treats the 202 as success. If the samples were expected, check that the replicas of one cluster send the same cluster label and distinct replica labels."},
	{TooManyHAClusters, 400, ScopeRequest, "distributor.ha-tracker.max-clusters", false,
		"The push comes from a new HA cluster (a cluster label value the tenant has not sent for 30 minutes) and the tenant already has its limit of HA clusters. Nothing of the request was stored.",
		"Send fewer distinct cluster label values, or raise the limit."},
	{InvalidScrapeConfig, 400, ScopeRequest, "", false,
		"A reload of the scraper's configuration (POST /-/reload, or SIGHUP, which logs it) was refused: the file does not parse as a Prometheus configuration (an unknown field, a relabelling regex that does not compile, a duplicate job name, rule_files or alerting, which a scraper does not evaluate), or a service discovery could not start. The last good configuration keeps running; at start, the process does not start.",
		"Fix the file and reload again; the answer and the log say what is wrong and where."},
	{InvalidRuleGroup, 400, ScopeRequest, "", false,
		"A rule group POSTed to /prometheus/config/v1/rules/{namespace} was refused by Prometheus's rule-file validation: YAML that does not parse, an unknown field, a group without a name, a rule that is neither a recording nor an alerting rule, an expression that is not valid PromQL, an invalid metric or label name, or a template that does not parse. The message gives each problem with its line and column. Nothing was stored: the tenant's rules are as before.",
		"Fix the group (promtool check rules accepts the same files) and POST it again."},
	{RuleGroupNotFound, 404, ScopeRequest, "", false,
		"The tenant has no rule group, namespace or group by the name asked for in /prometheus/config/v1/rules. mimirtool and cortextool read this answer as an empty rule set.",
		"Check the tenant (X-Scope-OrgID) and the namespace and group names; GET /prometheus/config/v1/rules lists them."},
	{TooManyRuleGroups, 400, ScopeRequest, "ruler.max-rule-groups-per-tenant", false,
		"A rule group POSTed to /prometheus/config/v1/rules/{namespace} is new and the tenant already has its limit of rule groups, over all namespaces. Nothing was stored: the tenant's rules are as before. Replacing an existing group is always allowed.",
		"Delete rule groups the tenant no longer needs, merge small groups, or raise the tenant's limit."},
	{TooManyRules, 400, ScopeRequest, "ruler.max-rules-per-rule-group", false,
		"A rule group POSTed to /prometheus/config/v1/rules/{namespace} has more rules than the tenant's limit per group. Nothing was stored: the tenant's rules are as before.",
		"Split the group into several, or raise the tenant's limit."},
	{RulerUnavailable, 503, ScopeQuery, "", true,
		"/prometheus/api/v1/rules or /alerts asks every alive ruler of the gossip cluster for the tenant's groups it evaluates, and one of them did not answer (it is down but not yet declared dead by the gossip, or it gossips no gRPC address). The answer would miss that ruler's groups, so none is given rather than an incomplete list.",
		"Retry: once the gossip declares a dead ruler dead (seconds), the others evaluate and list its groups. Operators: the message names the ruler; see /memberlist."},

	{NotFound, 404, ScopeRequest, "", false,
		"No endpoint of this process has the path (or, on /ring, no instance has the ID to forget; in the Prometheus API, an answer of errorType not_found, in Prometheus's JSON envelope). The message says when the path is a Prometheus API path without the /prometheus prefix, a push sent under /prometheus, or an endpoint of a role this process does not run (-target); the / page lists what the process serves.",
		"Fix the URL: the Prometheus API is under /prometheus (Grafana's data source URL is http://<argus>/prometheus), pushes go to /api/v1/push."},
	{NotSupported, 404, ScopeRequest, "", false,
		"The endpoint is part of the Prometheus HTTP API but Argus does not serve it yet (or this process runs no role that serves it), so it answers this 404 instead of the empty or made-up data that tools would take at their word. The message says why.",
		"Nothing to retry. docs/api.md lists what is served."},
	{InvalidParameter, 400, ScopeRequest, "", false,
		"A parameter of a status page (for example /config?mode=) has a value the page does not know.",
		"Fix the parameter; the message lists the values it takes."},
}

var byID = func() map[ID]*Entry {
	m := make(map[ID]*Entry, len(Catalogue))
	for i := range Catalogue {
		e := &Catalogue[i]
		if _, dup := m[e.ID]; dup {
			panic("apierror: duplicate ID " + e.ID)
		}
		m[e.ID] = e
	}
	return m
}()

// Lookup returns the entry of id; ok is false for an unknown ID.
func Lookup(id ID) (Entry, bool) {
	e, ok := byID[id]
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// Status is the HTTP status of id; 500 for an unknown ID.
func (id ID) Status() int {
	if e, ok := byID[id]; ok {
		return e.Status
	}
	return http.StatusInternalServerError
}

// Error is an error with an ID. Its message starts with the ID.
type Error struct {
	ID  ID
	Msg string
	// Err, if set, is what errors.Is and errors.As see through Unwrap.
	Err error
}

// Errorf returns an *Error of id with a formatted message. %w wraps as
// fmt.Errorf does.
func Errorf(id ID, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	return &Error{ID: id, Msg: wrapped.Error(), Err: errors.Unwrap(wrapped)}
}

func (e *Error) Error() string { return string(e.ID) + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// IDOf returns the ID of the first *Error in err's tree.
func IDOf(err error) (ID, bool) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.ID, true
	}
	return "", false
}

// LimitText renders a limit in force for a message: "-flag=value".
func LimitText(flag string, value any) string {
	return fmt.Sprintf("-%s=%v", flag, value)
}
