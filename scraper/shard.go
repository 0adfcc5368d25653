package scraper

import (
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"

	"github.com/argus-tsdb/argus/ring"
)

// tokensPerScraper is how many ring tokens each scraper has. With 128 each
// scraper's share of the targets varies by about ±9 % (see ring's
// RandomTokens), like an ingester's.
const tokensPerScraper = 128

// memberRing is the ring of the alive scrapers: each member's tokens are a
// pure function of its name (scraperTokens), so every scraper that sees the
// same members builds the same ring, with nothing gossiped but membership.
// It is immutable.
type memberRing struct {
	members []string // sorted
	r       *ring.Ring
}

// newMemberRing returns the ring of members (sorted, distinct).
func newMemberRing(members []string) *memberRing {
	d := ring.NewDesc()
	for _, m := range members {
		d.Instances[m] = ring.InstanceDesc{Addr: m, State: ring.StateActive, Tokens: scraperTokens(m)}
	}
	// Heartbeats never expire: liveness is the gossip's failure detector.
	return &memberRing{members: members, r: ring.NewRing(d, ring.Options{ReplicationFactor: 1})}
}

// scraperTokens returns the tokens of the scraper named name, sorted:
// xxhash of the name and the token's index. Two scrapers may draw the same
// token; the ring gives it to the lower name, deterministically.
func scraperTokens(name string) []uint32 {
	out := make([]uint32, 0, tokensPerScraper)
	seen := make(map[uint32]bool, tokensPerScraper)
	for i := 0; len(out) < tokensPerScraper; i++ {
		h := xxhash.Sum64String(name + "\xff" + strconv.Itoa(i))
		t := uint32(h) ^ uint32(h>>32)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// owner returns the scraper that scrapes a target whose labels after
// relabelling are ls: the ring owner of the labels' hash. It returns "" on
// an empty ring.
func (m *memberRing) owner(ls labels.Labels) string {
	if m == nil || len(m.members) == 0 {
		return ""
	}
	if len(m.members) == 1 {
		return m.members[0]
	}
	var buf [1]ring.Instance
	got, err := m.r.Get(targetToken(ls), buf[:0])
	if err != nil || len(got) == 0 {
		return ""
	}
	return got[0].ID
}

// targetToken is the token of a target: its labels after relabelling
// (labels.Hash, the hash Prometheus identifies targets and series by),
// folded to 32 bits.
func targetToken(ls labels.Labels) uint32 {
	h := ls.Hash()
	return uint32(h) ^ uint32(h>>32)
}

// assignment is the outcome of one filtering: the owner of every active
// target of every pool, as this scraper computed it.
type assignment struct {
	self string
	ring *memberRing
	// all are every target that survived relabelling, by pool, for the
	// targets pages: with their owner and tenant.
	all map[string][]assignedTarget
}

// assignedTarget is a target of the cluster as this scraper sees it.
type assignedTarget struct {
	discovered labels.Labels
	labels     labels.Labels // after relabelling, __ labels included
	owner      string
}

// shardFilter keeps of tsets the targets owned by self on r: target by
// target, it applies the pool's relabelling as the scrape manager will
// (scrape.PopulateLabels) and hashes the result onto r. Targets that
// relabelling drops, or whose labels are invalid, are kept by every
// scraper: the scrape manager lists them as dropped and scrapes nothing.
// Every group is passed on, emptied or not, so that the scrape manager
// stops the targets a group no longer gives this scraper (and writes their
// staleness markers, as when a target disappears). Pools without a
// configuration in cfgs (a job a reload just removed) are left out. tsets is not modified.
func shardFilter(tsets map[string][]*targetgroup.Group, cfgs map[string]*config.ScrapeConfig, self string, r *memberRing) (map[string][]*targetgroup.Group, *assignment) {
	a := &assignment{self: self, ring: r, all: map[string][]assignedTarget{}}
	out := make(map[string][]*targetgroup.Group, len(tsets))
	lb := labels.NewBuilder(labels.EmptyLabels())
	for pool, groups := range tsets {
		cfg := cfgs[pool]
		if cfg == nil {
			continue // a job just removed: discovery has not caught up yet
		}
		kept := make([]*targetgroup.Group, 0, len(groups))
		for _, tg := range groups {
			if tg == nil {
				continue
			}
			ng := &targetgroup.Group{Labels: tg.Labels, Source: tg.Source}
			for _, tl := range tg.Targets {
				ls, err := scrape.PopulateLabels(lb, cfg, tl, tg.Labels)
				if err != nil || ls.IsEmpty() {
					ng.Targets = append(ng.Targets, tl)
					continue
				}
				owner := r.owner(ls)
				scrape.PopulateDiscoveredLabels(lb, cfg, tl, tg.Labels)
				a.all[pool] = append(a.all[pool], assignedTarget{discovered: lb.Labels(), labels: ls, owner: owner})
				if owner == self || owner == "" {
					ng.Targets = append(ng.Targets, tl)
				}
			}
			kept = append(kept, ng)
		}
		out[pool] = kept
	}
	return out, a
}
