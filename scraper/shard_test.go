package scraper

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/ring"
)

// testConfigs parses a configuration of two jobs: "a" keeps every target,
// "b" drops the targets whose address ends in 0 and moves the rest's
// tenant into __tenant__.
func testConfigs(t *testing.T) map[string]*config.ScrapeConfig {
	t.Helper()
	c, err := config.Load(`
global: {scrape_interval: 15s}
scrape_configs:
  - job_name: a
  - job_name: b
    relabel_configs:
      - {source_labels: [__address__], regex: '.*0:80', action: drop}
      - {source_labels: [team], target_label: __tenant__}
`, nil)
	require.NoError(t, err)
	scfgs, err := c.GetScrapeConfigs()
	require.NoError(t, err)
	out := map[string]*config.ScrapeConfig{}
	for _, sc := range scfgs {
		out[sc.JobName] = sc
	}
	return out
}

// testTargets returns n targets per job, in groups of 10.
func testTargets(n int) map[string][]*targetgroup.Group {
	out := map[string][]*targetgroup.Group{}
	for _, job := range []string{"a", "b"} {
		for g := 0; g < n/10; g++ {
			tg := &targetgroup.Group{Source: fmt.Sprintf("%s/%d", job, g), Labels: model.LabelSet{"team": "t1"}}
			for i := range 10 {
				tg.Targets = append(tg.Targets, model.LabelSet{model.AddressLabel: model.LabelValue(fmt.Sprintf("10.0.%d.%d:80", g, i))})
			}
			out[job] = append(out[job], tg)
		}
	}
	return out
}

// kept returns the addresses each pool keeps, sorted.
func kept(tsets map[string][]*targetgroup.Group) map[string][]string {
	out := map[string][]string{}
	for pool, groups := range tsets {
		for _, g := range groups {
			for _, tl := range g.Targets {
				out[pool] = append(out[pool], string(tl[model.AddressLabel]))
			}
		}
		slices.Sort(out[pool])
	}
	return out
}

// dropped is whether job b's relabelling drops addr.
func dropped(pool, addr string) bool { return pool == "b" && addr[len(addr)-4] == '0' }

func TestShardFilter_EveryTargetExactlyOnce(t *testing.T) {
	cfgs, tsets := testConfigs(t), testTargets(300)
	members := []string{"s1", "s2", "s3"}
	r := newMemberRing(members)
	owners := map[string]string{} // pool/addr → the member that keeps it
	var firstAll map[string][]assignedTarget
	for _, m := range members {
		out, a := shardFilter(tsets, cfgs, m, r)
		require.Len(t, out["a"], 30, "every group is passed on, emptied or not")
		require.Len(t, out["b"], 30)
		if firstAll == nil {
			firstAll = a.all
		} else {
			require.Equal(t, firstAll, a.all, "every scraper computes the same assignment")
		}
		for pool, addrs := range kept(out) {
			for _, addr := range addrs {
				if dropped(pool, addr) {
					continue // every scraper keeps them, for the dropped list
				}
				key := pool + "/" + addr
				require.Empty(t, owners[key], "%s kept by %s and %s", key, owners[key], m)
				owners[key] = m
			}
		}
	}
	require.Len(t, owners, 300+270, "every target that survives relabelling is kept by exactly one scraper")
	perMember := map[string]int{}
	for _, m := range owners {
		perMember[m]++
	}
	for _, m := range members {
		require.Greater(t, perMember[m], 570/3/2, "%s owns too few targets: %v", m, perMember)
	}
	for _, at := range firstAll["b"] {
		require.Equal(t, "t1", at.labels.Get(TenantLabel), "the hash is over the labels after relabelling")
		require.Equal(t, owners["b/"+at.labels.Get(model.AddressLabel)], at.owner)
	}
}

func TestShardFilter_DroppedTargetsKeptByEveryScraper(t *testing.T) {
	cfgs, tsets := testConfigs(t), testTargets(100)
	r := newMemberRing([]string{"s1", "s2"})
	for _, m := range []string{"s1", "s2"} {
		out, _ := shardFilter(tsets, cfgs, m, r)
		n := 0
		for _, addr := range kept(out)["b"] {
			if dropped("b", addr) {
				n++
			}
		}
		require.Equal(t, 10, n, m)
	}
}

func TestShardFilter_OnlyTheLeaversTargetsMove(t *testing.T) {
	cfgs, tsets := testConfigs(t), testTargets(300)
	_, before := shardFilter(tsets, cfgs, "s1", newMemberRing([]string{"s1", "s2", "s3"}))
	_, after := shardFilter(tsets, cfgs, "s1", newMemberRing([]string{"s1", "s3"}))
	moved := 0
	for pool := range before.all {
		require.Len(t, after.all[pool], len(before.all[pool]))
		for i, b := range before.all[pool] {
			a := after.all[pool][i]
			require.Equal(t, b.labels, a.labels)
			if b.owner == "s2" {
				require.Contains(t, []string{"s1", "s3"}, a.owner)
				moved++
				continue
			}
			require.Equal(t, b.owner, a.owner, "a target of a scraper that stays does not move")
		}
	}
	require.Positive(t, moved)
}

func TestShardFilter_AloneKeepsEverything(t *testing.T) {
	cfgs, tsets := testConfigs(t), testTargets(50)
	out, _ := shardFilter(tsets, cfgs, "only", newMemberRing([]string{"only"}))
	require.Equal(t, kept(tsets), kept(out))
}

func TestScraperTokens_Deterministic(t *testing.T) {
	a, b := ring.MemberTokens("", "scraper-1"), ring.MemberTokens("", "scraper-1")
	require.Equal(t, a, b)
	require.Len(t, a, ring.MemberTokensPerMember)
	require.True(t, slices.IsSorted(a))
	require.NotEqual(t, a, ring.MemberTokens("", "scraper-2"))
}
