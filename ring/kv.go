package ring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the runtime dependencies of KV and Lifecycler.
type Deps struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
	// Roles are the roles this process runs (distributor, ingester, ...),
	// gossiped as its memberlist metadata so that others can count the
	// healthy members of a role (HealthyMembers). Only KV reads it.
	Roles []string
	// InstanceID is the ring instance this process registers (an ingester's
	// -ingester.ring.instance-id), empty if none. KV gossips it in its
	// metadata, so that other members mark the instance down for writes as
	// soon as the failure detector declares this process dead (see
	// liveness.go).
	InstanceID string
	// GRPCAddr is this process's gRPC address (host:port), gossiped in its
	// metadata so that other members can call it (the rulers ask each other
	// for their rule groups: MemberAddrs). A host that is empty or a
	// wildcard (0.0.0.0, ::) stands for the member's gossip address. Empty:
	// none is gossiped.
	GRPCAddr string
}

func (d Deps) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// inboxSize bounds the gossip messages waiting for the merge worker; beyond
// it they are dropped and counted (push/pull repairs what a drop loses).
const inboxSize = 1024

// maxBroadcastSize is the largest update gossiped over UDP: memberlist's
// default UDP buffer (1400 bytes) minus its framing. Larger updates reach
// the others by push/pull only.
const maxBroadcastSize = 1200

type inboxMsg struct {
	b    []byte
	done chan struct{} // a barrier: closed once everything queued before it is merged
}

// KV is the ring state of this process, kept in sync with every other
// process by memberlist gossip, and the ring client that follows it: Get,
// ReadSet, ReplicationFactor and Instances answer from the latest state.
//
// It is a service (Starting, Running, Stopping). Starting creates the
// memberlist instance, joins the -memberlist.join members and merges their
// state; Stopping sends the state to every member over TCP, leaves and shuts
// down. All methods are safe for concurrent use.
//
// # Concurrency
//
// memberlist calls the delegate from its own goroutines. Incoming updates
// and full states are handed off, without blocking, to one merge worker
// (dropped and counted when its inbox is full: see
// argus_ring_gossip_dropped_total); the local state is guarded by mu. Local
// updates (Update, Forget) merge under mu directly and queue a broadcast.
// Lock order: mu before live.mu (Ring builds a view with the down set);
// the HA elections' lock is never held with mu; no lock is held while a
// broadcast is queued.
type KV struct {
	meta    []byte // roles, comma-separated: this member's metadata
	cfg     MemberlistConfig
	opts    Options
	logger  *slog.Logger
	metrics *kvMetrics
	queue   *memberlist.TransmitLimitedQueue
	inbox   chan inboxMsg

	// transport replaces memberlist's own network transport when set (tests
	// count the bytes a member sends).
	transport memberlist.Transport

	ml         atomic.Pointer[memberlist.Memberlist] // set by Starting
	roles      atomic.Pointer[roleCounts]            // HealthyMembers' last count
	stopped    atomic.Bool                           // Stopping ran
	lastPull   atomic.Int64                          // unix ns of the last early state pull (pull.go)
	stop       chan struct{}                         // closed by Stopping to end the worker
	workerDone chan struct{}

	mu   sync.Mutex
	desc *Desc                // guarded by mu
	view atomic.Pointer[Ring] // view of desc; stored under mu, nil after desc or live changed
	live liveness             // gossip members' liveness, for the view's down instances
	// sentTokens is, per instance, the digest of the tokens this member last
	// gossiped in a full update: an update with the same tokens goes as a
	// heartbeat message (see heartbeat.go). Guarded by mu.
	sentTokens map[string]uint64

	// ha are the HA elections, gossiped beside desc (ha_kv.go); they have
	// their own lock, never held with mu.
	ha *HAElections
}

// NewKV returns a KV that gossips with cfg and answers ring queries with
// opts. It does no I/O and starts nothing.
func NewKV(cfg MemberlistConfig, opts Options, deps Deps) (*KV, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	fields := slices.Clone(deps.Roles)
	if deps.InstanceID != "" {
		fields = append(fields, instanceMetaPrefix+deps.InstanceID)
	}
	if deps.GRPCAddr != "" {
		fields = append(fields, grpcMetaPrefix+deps.GRPCAddr)
	}
	meta := []byte(strings.Join(fields, ","))
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("memberlist: roles %q are longer than %d bytes", meta, memberlist.MetaMaxSize)
	}
	k := &KV{
		meta:       meta,
		cfg:        cfg,
		opts:       opts,
		logger:     deps.logger().With("component", "ring"),
		inbox:      make(chan inboxMsg, inboxSize),
		stop:       make(chan struct{}),
		workerDone: make(chan struct{}),
		desc:       NewDesc(),
		sentTokens: map[string]uint64{},
		ha:         NewHAElections(),
	}
	k.queue = &memberlist.TransmitLimitedQueue{NumNodes: k.numMembers, RetransmitMult: cfg.RetransmitMult}
	k.metrics = newKVMetrics(deps.Registerer, func() float64 { return float64(k.queue.NumQueued()) })
	return k, nil
}

func (k *KV) numMembers() int {
	if ml := k.ml.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

// Starting creates the memberlist instance, starts the merge worker, joins
// the configured members (a failure is logged and retried by Running) and
// waits until the state they sent is merged.
func (k *KV) Starting(ctx context.Context) error {
	mlc := memberlist.DefaultLANConfig()
	mlc.Name = k.cfg.NodeName
	if mlc.Name == "" {
		mlc.Name = defaultNodeName()
	}
	mlc.BindAddr, mlc.BindPort = k.cfg.BindAddr, k.cfg.BindPort
	mlc.AdvertiseAddr, mlc.AdvertisePort = k.cfg.AdvertiseAddr, k.cfg.AdvertisePort
	mlc.GossipInterval, mlc.GossipNodes = k.cfg.GossipInterval, k.cfg.GossipNodes
	mlc.PushPullInterval, mlc.RetransmitMult = k.cfg.PushPullInterval, k.cfg.RetransmitMult
	mlc.Delegate = delegate{k}
	mlc.Events = events{k}
	if k.transport != nil {
		mlc.Transport = k.transport
	}
	mlc.Logger = newStdLogger(k.logger.With("component", "memberlist"))
	ml, err := memberlist.Create(mlc)
	if err != nil {
		return fmt.Errorf("create memberlist: %w", err)
	}
	k.ml.Store(ml)
	go k.worker()
	k.join()
	if err := k.sync(ctx); err != nil {
		k.stopped.Store(true)
		_ = ml.Shutdown()
		close(k.stop)
		<-k.workerDone
		return fmt.Errorf("merge joined ring state: %w", err)
	}
	return nil
}

func defaultNodeName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// joinLookupTimeout bounds the DNS lookups of one join.
const joinLookupTimeout = 10 * time.Second

// join joins the configured members, if any, looking up their dns+ names
// first. memberlist.Join blocks on the network and takes no context; it is
// bounded by memberlist's TCP timeout.
func (k *KV) join() {
	addrs := k.cfg.joinAddrs()
	if len(addrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinLookupTimeout)
	defer cancel()
	addrs, lookupErr := resolveJoinAddrs(ctx, addrs, k.cfg.BindPort, net.DefaultResolver.LookupHost)
	if lookupErr != nil {
		// The rejoin loop looks the names up again: a headless Service has
		// no address until its first pod runs.
		k.logger.Warn("looking up memberlist join addresses failed", "err", lookupErr, "members", k.cfg.Join)
	}
	if len(addrs) == 0 {
		return
	}
	n, err := k.ml.Load().Join(addrs)
	if err != nil {
		k.logger.Warn("joining memberlist cluster failed, will retry", "joined", n, "err", err, "members", addrs)
		return
	}
	k.logger.Info("joined memberlist cluster", "joined", n)
}

// sync waits until every message handed to the worker before the call is
// merged.
func (k *KV) sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case k.inbox <- inboxMsg{done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Running rejoins while this process is alone, collects old tombstones and
// refreshes the ring metrics, until ctx is cancelled.
func (k *KV) Running(ctx context.Context) error {
	rejoin := time.NewTicker(k.cfg.RejoinInterval)
	defer rejoin.Stop()
	gc := time.NewTicker(min(k.cfg.LeftTombstoneTTL/10, time.Minute))
	defer gc.Stop()
	refresh := time.NewTicker(time.Second)
	defer refresh.Stop()
	k.updateMetrics()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.workerDone:
			return errors.New("ring merge worker stopped")
		case <-rejoin.C:
			if k.numMembers() <= 1 {
				k.join()
			}
		case <-gc.C:
			k.mu.Lock()
			if k.desc.RemoveTombstones(k.opts.Now().Add(-k.cfg.LeftTombstoneTTL)) > 0 {
				k.view.Store(nil)
			}
			for id := range k.sentTokens {
				if _, ok := k.desc.Instances[id]; !ok {
					delete(k.sentTokens, id)
				}
			}
			k.live.forget(func(id string) bool { _, ok := k.desc.Instances[id]; return ok })
			k.mu.Unlock()
			k.ha.RemoveStale(k.opts.Now().Add(-HAElectionTTL))
		case <-refresh.C:
			k.updateMetrics()
		}
	}
}

// Stopping sends the full ring state to every member over TCP (so a LEFT
// written just before reaches everyone), leaves the cluster and shuts
// memberlist down. It is bounded by ctx and by memberlist's TCP timeout. It
// is idempotent, and a no-op if Starting did not succeed.
func (k *KV) Stopping(ctx context.Context) error {
	ml := k.ml.Load()
	if ml == nil || k.stopped.Swap(true) {
		return nil
	}
	msg := k.localState()
	for _, n := range ml.Members() {
		if ctx.Err() != nil {
			break
		}
		if n.Name != ml.LocalNode().Name {
			if err := ml.SendReliable(n, msg); err != nil {
				k.logger.Debug("sending ring state on leave failed", "member", n.Name, "err", err)
			}
		}
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := ml.Leave(max(timeout, 0)); err != nil {
		// Not a failed stop: a leave broadcast that no member acknowledged
		// in time (the last member of the cluster, or peers already gone)
		// only means the others learn of the departure from their probes.
		// An error here would make every rollout of the last ingester an
		// error exit.
		k.logger.Info("leave broadcast not acknowledged; the other members will notice through their probes", "err", err)
	}
	shutErr := ml.Shutdown()
	close(k.stop)
	<-k.workerDone
	if shutErr != nil {
		return fmt.Errorf("leave memberlist: %w", shutErr)
	}
	return nil
}

func (k *KV) worker() {
	defer close(k.workerDone)
	for {
		select {
		case <-k.stop:
			return
		case m := <-k.inbox:
			if m.done != nil {
				close(m.done)
				continue
			}
			k.mergeRemote(m.b)
		}
	}
}

// handOff queues b for the merge worker without blocking; it drops and counts
// b when the worker is behind.
func (k *KV) handOff(b []byte) {
	select {
	case k.inbox <- inboxMsg{b: b}:
	default:
		k.metrics.gossipDropped.WithLabelValues(dropInboxFull).Inc()
	}
}

// mergeRemote merges a gossiped state and re-gossips what it changed, so an
// update spreads epidemically beyond the members its origin reached.
func (k *KV) mergeRemote(b []byte) {
	if len(b) > 0 && b[0] == heartbeatVersion {
		k.mergeHeartbeat(b)
		return
	}
	if len(b) > 0 && b[0] == haVersion {
		k.mergeHA(b)
		return
	}
	d, elections, err := decodeFullState(b)
	if err != nil {
		k.metrics.gossipDropped.WithLabelValues(dropCorrupt).Inc()
		k.logger.Debug("dropping corrupt ring gossip", "err", err)
		return
	}
	k.metrics.gossipMerged.Inc()
	k.mu.Lock()
	changed := k.mergeLocked(d)
	bs := k.broadcastsLocked(changed)
	k.mu.Unlock()
	k.queueBroadcasts(bs)
	k.mergeHAEntries(elections)
}

// mergeHeartbeat merges a heartbeat message (see heartbeat.go), if this
// member holds the tokens it stands for, and re-gossips what it changed.
func (k *KV) mergeHeartbeat(b []byte) {
	m, err := decodeHeartbeat(b)
	if err != nil {
		k.metrics.gossipDropped.WithLabelValues(dropCorrupt).Inc()
		k.logger.Debug("dropping corrupt ring heartbeat", "err", err)
		return
	}
	k.mu.Lock()
	held, ok := k.desc.Instances[m.id]
	in, ok := m.resolve(held, ok)
	if !ok {
		k.mu.Unlock()
		k.metrics.gossipDropped.WithLabelValues(dropUnknownTokens).Inc()
		k.pullStateFor(m.id)
		return
	}
	k.metrics.gossipMerged.Inc()
	changed := k.mergeLocked(&Desc{Instances: map[string]InstanceDesc{m.id: in}})
	bs := k.broadcastsLocked(changed)
	k.mu.Unlock()
	k.queueBroadcasts(bs)
}

// mergeLocked merges the gossiped d into the local state and returns the
// instances it changed. It logs each state it changed, as this process sees
// it: a rollout can then be followed member by member (an instance first
// heard of only at debug level, as a new member hears of every instance).
// k.mu must be held.
func (k *KV) mergeLocked(d *Desc) []string {
	// Only the instances whose state d may change: none for a heartbeat
	// that keeps its state, by far the most frequent message. The zero
	// State stands for an instance not held.
	var before map[string]State
	for id, theirs := range d.Instances {
		if held := k.desc.Instances[id].State; held != theirs.State {
			if before == nil {
				before = map[string]State{}
			}
			before[id] = held
		}
	}
	changed := k.desc.Merge(d)
	for _, id := range changed {
		was, ok := before[id]
		now := k.desc.Instances[id].State
		switch {
		case !ok || was == now:
		case was == 0:
			k.logger.Debug("ring instance heard of", "instance", id, "state", now.String())
		default:
			k.logger.Info("ring instance state changed", "instance", id, "from", was.String(), "to", now.String())
		}
	}
	return changed
}

// broadcastsLocked encodes the current description of each of ids, one
// message per instance: a heartbeat message when this member already
// gossiped the instance's current tokens in full, else the full update.
// The two kinds have distinct names, so that a heartbeat queued after a
// full update does not replace it before it has been retransmitted. k.mu
// must be held.
func (k *KV) broadcastsLocked(ids []string) []broadcast {
	if len(ids) == 0 {
		return nil
	}
	k.view.Store(nil)
	bs := make([]broadcast, 0, len(ids))
	for _, id := range ids {
		in := k.desc.Instances[id]
		digest := tokensDigest(in.Tokens)
		if sent, ok := k.sentTokens[id]; ok && sent == digest {
			bs = append(bs, broadcast{name: id + heartbeatSuffix, id: id, msg: encodeHeartbeat(nil, id, in)})
			continue
		}
		k.sentTokens[id] = digest
		one := &Desc{Instances: map[string]InstanceDesc{id: in}}
		bs = append(bs, broadcast{name: id, id: id, msg: one.Encode(nil)})
	}
	return bs
}

// heartbeatSuffix names the broadcasts of heartbeat messages; "/" never ends
// an instance ID (see Config.Validate).
const heartbeatSuffix = "/heartbeat"

func (k *KV) queueBroadcasts(bs []broadcast) {
	k.metrics.changes.Add(float64(len(bs)))
	for _, b := range bs {
		if len(b.msg) > maxBroadcastSize {
			// Config.Validate refuses token counts that could get here for
			// this member's own instance; another member's, gossiped on,
			// may still be larger.
			k.metrics.gossipDropped.WithLabelValues(dropTooLarge).Inc()
			k.logger.Warn("ring update too large to gossip, dropped: it reaches the others by push/pull only",
				"instance", b.id, "bytes", len(b.msg), "limit", maxBroadcastSize, "see_metric", "argus_ring_gossip_dropped_total")
			k.mu.Lock()
			delete(k.sentTokens, b.id) // Try the full update again next time.
			k.mu.Unlock()
			continue
		}
		k.queue.QueueBroadcast(b)
	}
}

// Update merges the description of instance id into the local state and, if
// it changed the state, gossips it. It returns the description the state
// now holds for id, which is in unless a newer one was already known. in is
// not retained.
func (k *KV) Update(id string, in InstanceDesc) InstanceDesc {
	k.mu.Lock()
	changed := k.desc.Merge(&Desc{Instances: map[string]InstanceDesc{id: in}})
	bs := k.broadcastsLocked(changed)
	cur := k.desc.Instances[id]
	cur.Tokens = slices.Clone(cur.Tokens)
	k.mu.Unlock()
	k.queueBroadcasts(bs)
	return cur
}

// Forget marks instance id LEFT, with a heartbeat newer than any it had, and
// gossips it: its tokens leave the ring everywhere. An instance that is in
// fact alive takes its place back at its next heartbeat. It returns an error
// wrapping ErrUnknownInstance if the state does not hold id.
func (k *KV) Forget(id string) error {
	k.mu.Lock()
	in, ok := k.desc.Instances[id]
	if !ok {
		k.mu.Unlock()
		return fmt.Errorf("forget %q: %w", id, ErrUnknownInstance)
	}
	k.mu.Unlock()
	in.State = StateLeft
	in.Tokens = nil
	in.HeartbeatUnixMillis = max(k.opts.Now().UnixMilli(), in.HeartbeatUnixMillis+1)
	k.Update(id, in)
	k.logger.Info("forgot ring instance", "instance", id)
	return nil
}

// Desc returns a copy of the local ring state.
func (k *KV) Desc() *Desc {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.desc.Clone()
}

func (k *KV) localState() []byte {
	elections := k.ha.HAEntries()
	k.mu.Lock()
	defer k.mu.Unlock()
	return encodeFullState(nil, k.desc, elections)
}

// Ring returns a view of the current ring state. Views are immutable and
// cached until the state changes (a lock-free load on the hot path); callers
// should ask again rather than keep one.
func (k *KV) Ring() *Ring {
	if r := k.view.Load(); r != nil {
		return r
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.view.Load()
	if r == nil {
		r = NewRing(k.desc, k.opts)
		r.markDown(k.live.down())
		k.view.Store(r)
	}
	return r
}

// Get returns the replicas of token in the current ring; see (*Ring).Get.
func (k *KV) Get(token uint32, buf []Instance) ([]Instance, error) { return k.Ring().Get(token, buf) }

// Picker returns the current ring fixed at the current time; see
// (*Ring).Picker.
func (k *KV) Picker() Picker { return k.Ring().Picker() }

// ReadSet returns the instances a read asks; see (*Ring).ReadSet.
func (k *KV) ReadSet() (instances []Instance, maxFailures int, err error) {
	return k.Ring().ReadSet()
}

// ReplicationFactor returns how many instances hold each series.
func (k *KV) ReplicationFactor() int { return max(1, k.opts.ReplicationFactor) }

// Instances returns the instances of the current ring (not LEFT, with tokens).
func (k *KV) Instances() []Instance { return k.Ring().Instances() }

// Member is one process in the gossip cluster (any role, not only ingesters).
type Member struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"`
	State string `json:"state"` // alive, suspect, dead or left
}

// Members returns the gossip members this process knows, sorted by name.
// Before Starting it returns nil.
func (k *KV) Members() []Member {
	ml := k.ml.Load()
	if ml == nil {
		return nil
	}
	var out []Member
	for _, n := range ml.Members() {
		out = append(out, Member{Name: n.Name, Addr: n.Address(), State: nodeState(n.State)})
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// roleCountsTTL is how long HealthyMembers answers from its last count:
// distributors ask on every push, and memberlist's own failure detection
// takes seconds anyway.
const roleCountsTTL = time.Second

// roleCounts are the alive gossip members by role, as counted at at.
type roleCounts struct {
	at     time.Time
	counts map[string]int
}

// HealthyMembers returns how many alive gossip members, this process
// included, run role (as their Deps.Roles said), as counted at most
// roleCountsTTL ago. Before Starting it counts this process alone. It is
// cheap enough for every push: a count is one pass over the members a
// second.
func (k *KV) HealthyMembers(role string) int {
	ml := k.ml.Load()
	if ml == nil {
		return boolInt(hasRole(k.meta, role))
	}
	now := k.opts.Now()
	rc := k.roles.Load()
	if rc == nil || now.Sub(rc.at) >= roleCountsTTL {
		rc = &roleCounts{at: now, counts: map[string]int{}}
		for _, m := range ml.Members() {
			if m.State != memberlist.StateAlive {
				continue
			}
			for r := range strings.SplitSeq(string(m.Meta), ",") {
				rc.counts[r]++
			}
		}
		k.roles.Store(rc)
	}
	return rc.counts[role]
}

func hasRole(meta []byte, role string) bool {
	for r := range strings.SplitSeq(string(meta), ",") {
		if r == role {
			return true
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// HealthyInstancesCount returns how many ingesters of the ring are ACTIVE
// with a fresh heartbeat.
func (k *KV) HealthyInstancesCount() int { return k.Ring().HealthyInstancesCount() }

func nodeState(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	default:
		return "unknown"
	}
}

func (k *KV) updateMetrics() {
	now := k.opts.Now().UnixMilli()
	counts := map[string]int{}
	k.mu.Lock()
	for _, in := range k.desc.Instances {
		s := in.State.String()
		if in.State != StateLeft && k.opts.HeartbeatTimeout > 0 && now-in.HeartbeatUnixMillis > k.opts.HeartbeatTimeout.Milliseconds() {
			s = stateUnhealthy
		}
		counts[s]++
	}
	k.mu.Unlock()
	for _, s := range []string{StateJoining.String(), StateActive.String(), StateLeaving.String(), StateLeft.String(), stateUnhealthy} {
		k.metrics.members.WithLabelValues(s).Set(float64(counts[s]))
	}
	own := k.Ring().Ownership()
	k.metrics.ownedRatio.Reset()
	for id, o := range own {
		k.metrics.ownedRatio.WithLabelValues(id).Set(o)
	}
}

// delegate is KV's memberlist.Delegate, kept off KV's method set.
type delegate struct{ k *KV }

func (d delegate) NodeMeta(limit int) []byte {
	if len(d.k.meta) > limit {
		return nil
	}
	return d.k.meta
}

// NotifyMsg receives gossiped updates; buf is copied (memberlist reuses it).
func (d delegate) NotifyMsg(buf []byte) { d.k.handOff(slices.Clone(buf)) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := d.k.queue.GetBroadcasts(overhead, limit)
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	d.k.metrics.gossipBytes.Add(float64(n))
	return msgs
}

func (d delegate) LocalState(bool) []byte { return d.k.localState() }

// MergeRemoteState receives a full state (push/pull); it is handed off like
// any update.
func (d delegate) MergeRemoteState(buf []byte, _ bool) { d.k.handOff(slices.Clone(buf)) }

// broadcast is the gossiped update of one instance. A newer update of the
// same instance replaces a queued older one.
type broadcast struct {
	name string
	id   string // the instance
	msg  []byte
}

func (b broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(memberlist.NamedBroadcast)
	return ok && ob.Name() == b.name
}
func (b broadcast) Name() string    { return b.name }
func (b broadcast) Message() []byte { return b.msg }
func (b broadcast) Finished()       {}

// Addr returns the host:port this process gossips on, for others to join;
// empty before Starting.
func (k *KV) Addr() string {
	if ml := k.ml.Load(); ml != nil {
		return ml.LocalNode().Address()
	}
	return ""
}
