package ingester

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/argus-tsdb/argus/proto/arguspb"
)

// toMatchers converts the matchers of a read request. A regular expression
// that does not compile is ErrInvalidMatcher.
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
		m, err := labels.NewMatcher(t, pm.GetName(), pm.GetValue())
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidMatcher, pm.GetName(), err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// postingsForMatchers returns the sorted refs of the head series that match
// every matcher, with Prometheus's semantics: a matcher that matches the
// empty string also matches series that lack its label. No matcher matches
// every series. The result is owned by the caller.
//
// Each matcher that does not match "" is a set to intersect (the series
// whose value for the label matches); each that does is a set to subtract
// (the series whose value for the label does not match), from the
// intersection or, when there is none, from all series.
func postingsForMatchers(ctx context.Context, p *index.MemPostings, ms []*labels.Matcher) ([]promstorage.SeriesRef, error) {
	var its, subtract []index.Postings
	for _, m := range ms {
		if m.Matches("") {
			inverse := func(v string) bool { return !m.Matches(v) }
			if m.Type == labels.MatchNotEqual {
				subtract = append(subtract, p.Postings(ctx, m.Name, m.Value))
				continue
			}
			subtract = append(subtract, p.PostingsForLabelMatching(ctx, m.Name, inverse))
			continue
		}
		switch {
		case m.Type == labels.MatchEqual:
			its = append(its, p.Postings(ctx, m.Name, m.Value))
		case m.Type == labels.MatchRegexp && len(m.SetMatches()) > 0:
			its = append(its, p.Postings(ctx, m.Name, m.SetMatches()...))
		default:
			its = append(its, p.PostingsForLabelMatching(ctx, m.Name, m.Matches))
		}
	}
	if len(its) == 0 {
		its = append(its, p.All())
	}
	it := index.Intersect(its...)
	for _, s := range subtract {
		it = index.Without(it, s)
	}
	refs, err := index.ExpandPostings(it)
	if err != nil {
		return nil, fmt.Errorf("expand postings: %w", err)
	}
	return refs, nil
}
