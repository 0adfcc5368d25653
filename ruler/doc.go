// Package ruler is the ruler role: Prometheus's own rules manager, one per
// tenant, evaluating the tenant's recording and alerting rules over the
// whole cluster, its rule groups sharded over the alive rulers.
//
// What is Prometheus's, unchanged: the rule-file format and its validation
// (model/rulefmt), evaluation, `for:` state, ALERTS and ALERTS_FOR_STATE
// and their restore (rules.Manager), alert delivery (notifier.Manager). What
// is Argus's own:
//
//   - the rule store (store.go): every tenant's groups by namespace, one
//     YAML file per namespace under -ruler.storage-path, written atomically,
//     and imported at start from -ruler.rule-path;
//   - the configuration API (api.go), Mimir's and Cortex's
//     /prometheus/config/v1/rules[/{namespace}[/{group}]], which
//     mimirtool and cortextool speak;
//   - the tenant's view (tenant.go): queries carry the tenant in their
//     context to the querier's Queryable, recording-rule results and the
//     ALERTS series go through a Pusher (the distributor in-process, or a
//     remote-write URL) as the tenant's samples, and alerts reach
//     Alertmanager with X-Scope-OrgID set to the tenant;
//   - sharding (shard.go): each group is evaluated by the ruler that owns
//     the hash of (tenant, namespace, group) on a ring of the alive rulers
//     of the memberlist gossip, as the scrapers share their targets;
//   - listing (listing.go): /api/v1/rules and /api/v1/alerts merge every
//     alive ruler's groups, asked over the internal gRPC service
//     arguspb.Ruler, so that any ruler (or querier) answers the whole list.
//
// See DESIGN.md for why and for the bounds on moving groups.
package ruler
