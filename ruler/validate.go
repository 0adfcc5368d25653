package ruler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// promParser parses rule expressions as the querier's engine does.
var promParser = parser.NewParser(parser.Options{})

// ParseGroup parses and validates one rule group, the body that mimirtool
// and cortextool POST to /prometheus/config/v1/rules/{namespace}: a YAML
// mapping with name, interval, rules (Prometheus's rule-file format for one
// entry of groups). Unknown fields are refused, as Prometheus refuses them in
// a rule file. The error is an apierror.InvalidRuleGroup listing every
// problem, each with the line and column of the body it refers to.
func ParseGroup(body []byte) (rulefmt.RuleGroup, error) {
	var g rulefmt.RuleGroup
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&g); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body: want one rule group (name, interval, rules)")
		}
		return g, apierror.Errorf(apierror.InvalidRuleGroup, "%w", err)
	}
	var node rulefmt.RuleGroupNode
	if err := yaml.Unmarshal(body, &node); err != nil {
		return g, apierror.Errorf(apierror.InvalidRuleGroup, "%w", err)
	}
	if errs := validateGroup(g, node); len(errs) > 0 {
		return g, apierror.Errorf(apierror.InvalidRuleGroup, "%w", errors.Join(errs...))
	}
	return g, nil
}

// validateGroup checks g (decoded from node) as rulefmt.RuleGroups.Validate
// checks each group of a file: a name, valid group labels, and each rule
// through rulefmt's own Rule.Validate (PromQL, names, templates), whose
// errors carry their line and column.
func validateGroup(g rulefmt.RuleGroup, node rulefmt.RuleGroupNode) []error {
	var errs []error
	if g.Name == "" {
		errs = append(errs, fmt.Errorf("%d:%d: group name must not be empty", node.Line, node.Column))
	}
	for k, v := range g.Labels {
		if !model.UTF8Validation.IsValidLabelName(k) || k == model.MetricNameLabel {
			errs = append(errs, fmt.Errorf("group %q: invalid label name %q", g.Name, k))
		}
		if !model.LabelValue(v).IsValid() {
			errs = append(errs, fmt.Errorf("group %q: invalid label value %q", g.Name, v))
		}
	}
	if g.Interval < 0 {
		errs = append(errs, fmt.Errorf("group %q: negative interval %s", g.Name, g.Interval))
	}
	if len(node.Rules) != len(g.Rules) {
		return append(errs, fmt.Errorf("group %q: rules do not decode consistently", g.Name))
	}
	for i := range g.Rules {
		r := &g.Rules[i]
		for _, we := range r.Validate(node.Rules[i], model.UTF8Validation, promParser) {
			name := r.Record
			if r.Alert != "" {
				name = r.Alert
			}
			errs = append(errs, &rulefmt.Error{Group: g.Name, Rule: i + 1, RuleName: name, Err: we})
		}
	}
	return errs
}

// ParseNamespace parses and validates a whole rule file (groups: [...]) with
// rulefmt.Parse: duplicate group names are refused too. name prefixes the
// errors.
func ParseNamespace(name string, content []byte) ([]rulefmt.RuleGroup, error) {
	rgs, errs := rulefmt.Parse(content, false, model.UTF8Validation, promParser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, apierror.Errorf(apierror.InvalidRuleGroup, "%s: %s", name, strings.Join(msgs, "; "))
	}
	return rgs.Groups, nil
}
