package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// Roles of the processes of a cluster, as passed to -target.
const (
	RoleIngester    = "ingester"
	RoleDistributor = "distributor"
	RoleQuerier     = "querier"
)

// Ring states as /ring reports them.
const (
	StateJoining   = "JOINING"
	StateActive    = "ACTIVE"
	StateLeaving   = "LEAVING"
	StateLeft      = "LEFT"
	StateUnhealthy = "UNHEALTHY"
)

// Cluster timing. Heartbeats are fast so that a killed ingester turns
// UNHEALTHY within seconds; the remote timeout is short so that a push to a
// dead ingester that the ring still lists fails fast instead of holding a
// quorum answer for the default 20s.
const (
	heartbeatPeriod  = time.Second
	heartbeatTimeout = 5 * time.Second
	remoteTimeout    = 2 * time.Second
	// defaultRingTimeout bounds WaitRing: gossip converges within seconds,
	// a restarted ingester replays its WAL first.
	defaultRingTimeout = 60 * time.Second
)

// Topology is the shape of a cluster: how many processes of each role, each
// a separate argus process joined to one memberlist gossip ring.
//
//	                ┌── push ──▶ distributor i ──gRPC (RF replicas, quorum)──┐
//	test / prometheus                                                         ▼
//	                └── query ─▶ querier i ────gRPC (read set, merge)─────▶ ingester 0..n-1
//	every process: memberlist gossip (127.0.0.1), joined to the initial ingesters
type Topology struct {
	// Ingesters, Distributors and Queriers count the processes of each role.
	Ingesters, Distributors, Queriers int
	// RF is -ingester.ring.replication-factor; zero means 3.
	RF int
	// ExtraFlags are appended to the flags of every process (after the
	// harness's own, so they override them).
	ExtraFlags []string
	// IngesterFlags, when set, gives flags appended to those of ingester i
	// (after ExtraFlags), such as its availability zone.
	IngesterFlags func(i int) []string
}

// Member is one process of a cluster: an argus Process plus its ring
// identity. Kill, Stop and Restart keep its ports, memberlist port, instance
// ID and storage directory, so a restarted ingester finds its WAL and tokens.
type Member struct {
	*Process
	role           string
	id             string
	memberlistPort int
}

// ID is the -ingester.ring.instance-id (and memberlist node name) of m.
func (m *Member) ID() string { return m.id }

// Role is the -target of m.
func (m *Member) Role() string { return m.role }

// MemberlistAddr is the gossip address of m, e.g. 127.0.0.1:7946.
func (m *Member) MemberlistAddr() string { return fmt.Sprintf("127.0.0.1:%d", m.memberlistPort) }

// Ring reads GET /ring as JSON, failing the test on any error.
func (m *Member) Ring(t testing.TB) RingStatus {
	t.Helper()
	rs, err := m.TryRing(context.Background())
	require.NoError(t, err, "ring of %s", m.id)
	return rs
}

// TryRing reads GET /ring as JSON; it never fails the test and is safe for
// concurrent use (for pollers running beside a Stop or Kill).
func (m *Member) TryRing(ctx context.Context) (RingStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+"/ring", nil)
	if err != nil {
		return RingStatus{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.client.c.Do(req)
	if err != nil {
		return RingStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return RingStatus{}, fmt.Errorf("GET /ring of %s: status %d", m.id, resp.StatusCode)
	}
	var rs RingStatus
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		return RingStatus{}, fmt.Errorf("decode /ring of %s: %w", m.id, err)
	}
	return rs, nil
}

// TokensFile reads the tokens an ingester persisted in its storage
// directory (-ingester.ring.tokens-file-path defaults to DIR/tokens).
func (m *Member) TokensFile(t testing.TB) []uint32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.StorageDir(), "tokens"))
	require.NoError(t, err, "tokens file of %s", m.id)
	var f struct {
		Tokens []uint32 `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal(b, &f), "tokens file of %s: %s", m.id, Truncate(string(b), 200))
	return f.Tokens
}

// RingStatus is the JSON answer of GET /ring.
type RingStatus struct {
	ReplicationFactor int            `json:"replication_factor"`
	Instances         []RingInstance `json:"instances"`
}

// RingInstance is one instance of RingStatus.
type RingInstance struct {
	ID            string    `json:"id"`
	Zone          string    `json:"zone"`
	State         string    `json:"state"`
	OwnedRatio    float64   `json:"owned_ratio"`
	Tokens        int       `json:"tokens"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Addr          string    `json:"addr"`
}

// Instance returns the instance with id, if the ring lists it.
func (rs RingStatus) Instance(id string) (RingInstance, bool) {
	for _, in := range rs.Instances {
		if in.ID == id {
			return in, true
		}
	}
	return RingInstance{}, false
}

// CountState counts the instances in state.
func (rs RingStatus) CountState(state string) int {
	n := 0
	for _, in := range rs.Instances {
		if in.State == state {
			n++
		}
	}
	return n
}

// ringView is the part of a ring that every process must agree on: which
// instances, their states, token counts and addresses (not heartbeat times
// or derived ratios).
type ringView struct {
	RF        int
	Instances []string
}

func viewOf(rs RingStatus) ringView {
	v := ringView{RF: rs.ReplicationFactor}
	for _, in := range rs.Instances {
		v.Instances = append(v.Instances, fmt.Sprintf("%s %s tokens=%d addr=%s zone=%s", in.ID, in.State, in.Tokens, in.Addr, in.Zone))
	}
	slices.Sort(v.Instances)
	return v
}

// Cluster is a running Topology. Its methods are called from the test's
// goroutine (the Member and Process methods say which are concurrent-safe).
type Cluster struct {
	topo  Topology
	seeds []string // memberlist addresses of the initial ingesters
	// members is every process ever started, in start order.
	members                           []*Member
	ingesters, distributors, queriers []*Member
}

// StartCluster starts the ingesters, then the distributors and the queriers,
// each on free 127.0.0.1 ports with its own storage directory, every one
// joining the gossip at the initial ingesters' memberlist addresses, and
// waits until every process sees every ingester ACTIVE and all see the same
// ring (WaitRing). The processes are killed at the end of the test.
func StartCluster(t testing.TB, topo Topology) *Cluster {
	t.Helper()
	require.Positive(t, topo.Ingesters, "a cluster needs ingesters")
	if topo.RF == 0 {
		topo.RF = 3
	}
	c := &Cluster{topo: topo}
	ports := FreeMemberlistPorts(t, topo.Ingesters)
	for _, p := range ports {
		c.seeds = append(c.seeds, fmt.Sprintf("127.0.0.1:%d", p))
	}
	for i := range topo.Ingesters {
		c.ingesters = append(c.ingesters, c.start(t, RoleIngester, fmt.Sprintf("ing-%d", i), ports[i]))
	}
	for i := range topo.Distributors {
		c.distributors = append(c.distributors, c.start(t, RoleDistributor, fmt.Sprintf("dist-%d", i), 0))
	}
	for i := range topo.Queriers {
		c.queriers = append(c.queriers, c.start(t, RoleQuerier, fmt.Sprintf("querier-%d", i), 0))
	}
	c.WaitRing(t, topo.Ingesters)
	return c
}

// start starts one member. mlPort 0 picks a free one.
func (c *Cluster) start(t testing.TB, role, id string, mlPort int) *Member {
	t.Helper()
	if mlPort == 0 {
		mlPort = FreeMemberlistPorts(t, 1)[0]
	}
	self := fmt.Sprintf("127.0.0.1:%d", mlPort)
	var join []string
	for _, s := range c.seeds {
		if s != self {
			join = append(join, s)
		}
	}
	flags := []string{
		"-ingester.ring.store=memberlist",
		"-memberlist.bind-addr=127.0.0.1",
		"-memberlist.bind-port=" + strconv.Itoa(mlPort),
		"-memberlist.join=" + strings.Join(join, ","),
		"-memberlist.nodename=" + id,
		"-memberlist.rejoin-interval=1s",
		"-ingester.ring.instance-id=" + id,
		"-ingester.ring.instance-addr=127.0.0.1",
		"-ingester.ring.heartbeat-period=" + heartbeatPeriod.String(),
		"-ingester.ring.heartbeat-timeout=" + heartbeatTimeout.String(),
		"-ingester.ring.replication-factor=" + strconv.Itoa(c.topo.RF),
		"-distributor.remote-timeout=" + remoteTimeout.String(),
	}
	flags = append(flags, c.topo.ExtraFlags...)
	if role == RoleIngester && c.topo.IngesterFlags != nil {
		flags = append(flags, c.topo.IngesterFlags(len(c.ingesters))...)
	}
	p := newArgus(t, id, role, Options{Flags: flags})
	m := &Member{Process: p, role: role, id: id, memberlistPort: mlPort}
	p.proc.start(t, p.readyTimeout)
	c.members = append(c.members, m)
	return m
}

// AddIngester starts one more ingester (scale-out), joined to the initial
// ingesters, and waits for its /ready; it does not wait for the ring (call
// WaitRing).
func (c *Cluster) AddIngester(t testing.TB) *Member {
	t.Helper()
	m := c.start(t, RoleIngester, fmt.Sprintf("ing-%d", len(c.ingesters)), 0)
	c.ingesters = append(c.ingesters, m)
	return m
}

// Ingester returns the i-th ingester (0-based, in start order).
func (c *Cluster) Ingester(i int) *Member { return c.ingesters[i] }

// Distributor returns the i-th distributor.
func (c *Cluster) Distributor(i int) *Member { return c.distributors[i] }

// Querier returns the i-th querier.
func (c *Cluster) Querier(i int) *Member { return c.queriers[i] }

// Ingesters returns every ingester ever started, running or not.
func (c *Cluster) Ingesters() []*Member { return slices.Clone(c.ingesters) }

// Members returns every process of the cluster, running or not.
func (c *Cluster) Members() []*Member { return slices.Clone(c.members) }

// Running returns the processes that are running now.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.members {
		if m.Running() {
			out = append(out, m)
		}
	}
	return out
}

// RingViews reads /ring from every running process, by member ID.
func (c *Cluster) RingViews(t testing.TB) map[string]RingStatus {
	t.Helper()
	out := map[string]RingStatus{}
	for _, m := range c.Running() {
		out[m.id] = m.Ring(t)
	}
	return out
}

// RingDiff returns "" when every running process reports the same ring
// (instances, states, token counts, addresses) with wantActive ACTIVE
// instances, and otherwise what differs.
func (c *Cluster) RingDiff(t testing.TB, wantActive int) string {
	t.Helper()
	var b strings.Builder
	var first *ringView
	var firstID string
	for _, m := range c.Running() {
		rs, err := m.TryRing(context.Background())
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", m.id, err)
			continue
		}
		if n := rs.CountState(StateActive); n != wantActive {
			fmt.Fprintf(&b, "%s sees %d ACTIVE instances, want %d: %v\n", m.id, n, wantActive, viewOf(rs).Instances)
		}
		v := viewOf(rs)
		if first == nil {
			first, firstID = &v, m.id
			continue
		}
		if d := cmp.Diff(*first, v); d != "" {
			fmt.Fprintf(&b, "ring of %s differs from ring of %s (-%s +%s):\n%s", m.id, firstID, firstID, m.id, d)
		}
	}
	return b.String()
}

// WaitRing waits until every running process sees the same ring with
// wantActive ACTIVE instances (see RingDiff), and returns how long that took.
func (c *Cluster) WaitRing(t testing.TB, wantActive int) time.Duration {
	t.Helper()
	begin := time.Now()
	Eventually(t, func() string { return c.RingDiff(t, wantActive) }, defaultRingTimeout)
	return time.Since(begin)
}

// FreeMemberlistPorts returns n distinct ports that were free a moment ago
// on 127.0.0.1 for both TCP and UDP, as memberlist binds both.
func FreeMemberlistPorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		require.Less(t, attempts, 100*n, "no free TCP+UDP port pair found")
		port := pickPort()
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			_ = l.Close()
			continue
		}
		if !claimPort(port) {
			_, _ = l.Close(), u.Close()
			continue
		}
		// Keep both open until all are picked, so that no port repeats.
		defer l.Close()
		defer u.Close()
		ports = append(ports, port)
	}
	return ports
}
