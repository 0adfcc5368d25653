package scraper

import (
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/scrape"

	"github.com/argus-tsdb/argus/ring"
)

// newMemberRing returns the ring of the alive scrapers (sorted, distinct):
// a target's owner is the owner of its targetToken. The scrapers' seed is
// empty, as it always was.
func newMemberRing(members []string) *ring.MemberRing {
	return ring.NewMemberRing("", members)
}

// targetToken is the token of a target: its labels after relabelling
// (labels.Hash, the hash Prometheus identifies targets and series by),
// folded to 32 bits.
func targetToken(ls labels.Labels) uint32 {
	return ring.FoldHash(ls.Hash())
}

// assignment is the outcome of one filtering: the owner of every active
// target of every pool, as this scraper computed it.
type assignment struct {
	self string
	ring *ring.MemberRing
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
func shardFilter(tsets map[string][]*targetgroup.Group, cfgs map[string]*config.ScrapeConfig, self string, r *ring.MemberRing) (map[string][]*targetgroup.Group, *assignment) {
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
				owner := r.Owner(targetToken(ls))
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
