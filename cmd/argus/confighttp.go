package main

import (
	"bytes"
	"errors"
	"flag"
	"net/http"
	"net/url"

	"go.yaml.in/yaml/v3"

	"github.com/argus-tsdb/argus/internal/apierror"
)

// configHandler serves GET /config: the configuration in force, in the
// layout and order of -config.file, with secrets masked; ?mode=diff keeps
// only the fields that differ from the flag defaults.
func configHandler(cfg Config) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out, err := configYAML(&cfg, r.URL.Query().Get("mode"))
		if errors.Is(err, errUnknownMode) {
			writeConfigModeError(w)
			return
		}
		if err != nil {
			http.Error(w, string(apierror.Internal)+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(out)
	}
}

var errUnknownMode = errors.New("unknown mode")

// configYAML renders c as a configuration file: whole (mode ""), or only
// the fields that differ from the defaults (mode "diff").
func configYAML(c *Config, mode string) ([]byte, error) {
	current, err := configNode(c)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "":
	case "diff":
		var defaults Config
		defaults.RegisterFlags(flag.NewFlagSet("defaults", flag.ContinueOnError))
		base, err := configNode(&defaults)
		if err != nil {
			return nil, err
		}
		current = diffNodes(current, base)
	default:
		return nil, errUnknownMode
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(current); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// configNode renders c in the file layout as a YAML tree, secrets masked.
func configNode(c *Config) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(fileView(c)); err != nil {
		return nil, err
	}
	maskSecrets(&n)
	return &n, nil
}

// maskSecrets replaces the password of every URL value (a remote-write URL
// with credentials in it) with xxxxx. No other field holds a secret: the
// token file holds only hashes, and the file is shown only by its path.
func maskSecrets(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		if u, err := url.Parse(n.Value); err == nil && u.User != nil {
			n.Value = u.Redacted()
		}
	}
	for _, c := range n.Content {
		maskSecrets(c)
	}
}

// diffNodes returns the mapping cur with only the entries that differ from
// base, at any depth. Both are renderings of the same layout.
func diffNodes(cur, base *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	baseAt := map[string]*yaml.Node{}
	for j := 0; j+1 < len(base.Content); j += 2 {
		baseAt[base.Content[j].Value] = base.Content[j+1]
	}
	for j := 0; j+1 < len(cur.Content); j += 2 {
		key, v := cur.Content[j], cur.Content[j+1]
		b := baseAt[key.Value]
		if v.Kind == yaml.MappingNode && b != nil && b.Kind == yaml.MappingNode {
			if d := diffNodes(v, b); len(d.Content) > 0 {
				out.Content = append(out.Content, key, d)
			}
			continue
		}
		if b == nil || !sameNode(v, b) {
			out.Content = append(out.Content, key, v)
		}
	}
	return out
}

func sameNode(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.Value != b.Value || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if !sameNode(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

func writeConfigModeError(w http.ResponseWriter) {
	http.Error(w, string(apierror.InvalidParameter)+`: mode must be empty (the whole configuration) or "diff" (the fields that differ from the defaults)`, apierror.InvalidParameter.Status())
}

// processFlags is what the querier's /api/v1/status/flags lists: every
// flag of the process, of every role, with its value in force (defaults,
// then the file, then the command line) as the flag prints it, passwords
// in URLs masked as in /config. Prometheus lists all of its flags there, and
// tools read a flag of any role from it.
func processFlags(cfg Config) map[string]string {
	// Every flag is registered with a pointer to a field of view (see
	// flagAddr): registering sets view to the defaults, and copying cfg
	// over it makes each flag print cfg's value.
	view := new(Config)
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	view.RegisterFlags(fs)
	*view = cfg
	out := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if u, err := url.Parse(v); err == nil && u.User != nil {
			v = u.Redacted()
		}
		out[f.Name] = v
	})
	return out
}
