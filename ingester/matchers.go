package ingester

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// toMatchers converts the matchers of a read request. A regular expression
// that does not compile is ErrInvalidMatcher. Regular-expression matchers
// come from regexpMatchers, so a dashboard that repeats a query does not
// compile its regular expressions again.
func toMatchers(pms []*arguspb.LabelMatcher) ([]*labels.Matcher, error) {
	ms := make([]*labels.Matcher, 0, len(pms))
	for _, pm := range pms {
		var t labels.MatchType
		switch pm.GetType() {
		case arguspb.LabelMatcher_EQ:
			t = labels.MatchEqual
		case arguspb.LabelMatcher_NEQ:
			t = labels.MatchNotEqual
		case arguspb.LabelMatcher_RE:
			t = labels.MatchRegexp
		case arguspb.LabelMatcher_NRE:
			t = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("%w: unknown type %d", ErrInvalidMatcher, pm.GetType())
		}
		m, err := regexpMatchers.get(t, pm.GetName(), pm.GetValue())
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidMatcher, pm.GetName(), err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// matcherCacheSize bounds the compiled matchers kept by regexpMatchers.
const matcherCacheSize = 1024

// regexpMatchers caches the compiled regular-expression matchers of every
// tenant: a labels.Matcher is immutable once built, and one compilation of a
// large alternation costs more than the postings lookup it serves.
var regexpMatchers = newMatcherCache(matcherCacheSize)

// matcherKey identifies a matcher.
type matcherKey struct {
	t           labels.MatchType
	name, value string
}

// matcherCache is a least-recently-used cache of compiled matchers, of at
// most size entries. Safe for concurrent use; it blocks only on its own
// short lock (compilation runs without it).
type matcherCache struct {
	size int

	mu      sync.Mutex
	entries map[matcherKey]*list.Element // guarded by mu; values are *labels.Matcher
	order   *list.List                   // guarded by mu; front is the most recently used, values are matcherKey
}

func newMatcherCache(size int) *matcherCache {
	return &matcherCache{size: size, entries: map[matcherKey]*list.Element{}, order: list.New()}
}

type matcherEntry struct {
	key matcherKey
	m   *labels.Matcher
}

// get returns the matcher of type t, name and value, compiling it on a miss.
// Equality matchers are not cached: building one costs nothing.
func (c *matcherCache) get(t labels.MatchType, name, value string) (*labels.Matcher, error) {
	if t == labels.MatchEqual || t == labels.MatchNotEqual {
		return labels.NewMatcher(t, name, value)
	}
	key := matcherKey{t: t, name: name, value: value}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		m := e.Value.(*matcherEntry).m
		c.mu.Unlock()
		return m, nil
	}
	c.mu.Unlock()

	m, err := labels.NewMatcher(t, name, value)
	if err != nil {
		return nil, err // Not cached: an invalid regexp is rare and its error cheap.
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok { // Compiled concurrently by another read.
		return e.Value.(*matcherEntry).m, nil
	}
	c.entries[key] = c.order.PushFront(&matcherEntry{key: key, m: m})
	if c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*matcherEntry).key)
	}
	return m, nil
}

// postingsForMatchers returns the postings of the head series that match
// every matcher, in increasing ref order, with Prometheus's semantics: a
// matcher that matches the empty string also matches series that lack its
// label (labels never have empty values). No matcher matches every series.
//
// As Prometheus's PostingsForMatchers, each matcher that does not match ""
// is a set to intersect: the series whose value for the label matches, found
// from the values' postings (a set lookup for an alternation, the
// all-values postings for =~".+" and !=""). Each that does match "" is a set
// to subtract: the series whose value does not match. The subtractions apply
// to the intersection or, when there is none, to all series; =~".*" costs
// nothing and !~".*" matches nothing.
func postingsForMatchers(ctx context.Context, p *headPostings, ms []*labels.Matcher) (index.Postings, error) {
	var its, subtract []index.Postings
	for _, m := range ms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case m.Type == labels.MatchRegexp && m.Value == ".*":
			continue
		case m.Type == labels.MatchNotRegexp && m.Value == ".*":
			return index.EmptyPostings(), nil
		case !m.Matches(""):
			it := matchingPostings(ctx, p, m)
			if index.IsEmptyPostingsType(it) {
				return it, nil // The intersection is empty.
			}
			its = append(its, it)
		default:
			subtract = append(subtract, nonMatchingPostings(ctx, p, m))
		}
	}
	if len(its) == 0 {
		its = append(its, p.All())
	}
	it := index.Intersect(its...)
	for _, s := range subtract {
		it = index.Without(it, s)
	}
	return it, nil
}

// matchingPostings returns the postings of the series whose value of m's
// label matches m, for m that does not match "".
func matchingPostings(ctx context.Context, p *headPostings, m *labels.Matcher) index.Postings {
	switch {
	case m.Type == labels.MatchEqual:
		return p.Postings(ctx, m.Name, m.Value)
	case m.Type == labels.MatchNotEqual, m.Type == labels.MatchRegexp && m.Value == ".+":
		// != "" (the only != that does not match "") and =~".+": any value.
		return p.PostingsForAllLabelValues(ctx, m.Name)
	case m.Type == labels.MatchRegexp && len(m.SetMatches()) > 0:
		return p.Postings(ctx, m.Name, m.SetMatches()...)
	}
	return p.PostingsForLabelMatching(ctx, m.Name, m.Matches)
}

// nonMatchingPostings returns the postings of the series that have m's label
// with a value that m does not match, for m that matches "".
func nonMatchingPostings(ctx context.Context, p *headPostings, m *labels.Matcher) index.Postings {
	switch {
	case m.Type == labels.MatchNotEqual:
		return p.Postings(ctx, m.Name, m.Value)
	case m.Type == labels.MatchEqual, m.Type == labels.MatchNotRegexp && m.Value == ".+":
		// = "" (the only = that matches "") and !~".+": any value.
		return p.PostingsForAllLabelValues(ctx, m.Name)
	case m.Type == labels.MatchNotRegexp && len(m.SetMatches()) > 0:
		// The values the negated alternation does not match are its set.
		return p.Postings(ctx, m.Name, m.SetMatches()...)
	}
	return p.PostingsForLabelMatching(ctx, m.Name, func(v string) bool { return !m.Matches(v) })
}
