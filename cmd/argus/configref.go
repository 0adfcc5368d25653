package main

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"
)

// configReference renders docs/configuration.md: every field of
// -config.file in file order, with its flag, type, default and help. A test
// keeps the file in step with the code.
func configReference() string {
	var cfg Config
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	byAddr := map[uintptr]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { byAddr[flagAddr(f)] = f })
	var b strings.Builder
	b.WriteString(configRefHeader)
	b.WriteString("```yaml\n")
	var open []string // the sections the previous field was in
	for _, l := range configLeaves(&cfg) {
		parts := strings.Split(l.Path, ".")
		sections, name := parts[:len(parts)-1], parts[len(parts)-1]
		common := 0
		for common < len(open) && common < len(sections) && open[common] == sections[common] {
			common++
		}
		for i := common; i < len(sections); i++ {
			fmt.Fprintf(&b, "%s%s:\n", strings.Repeat("  ", i), sections[i])
		}
		open = sections
		indent := strings.Repeat("  ", len(sections))
		f := byAddr[l.Addr]
		fmt.Fprintf(&b, "%s# %s\n%s# CLI flag: -%s\n%s[%s: <%s> | default = %s]\n\n",
			indent, f.Usage, indent, f.Name, indent, name, typeName(l.Type), refDefault(f))
	}
	b.WriteString("```\n")
	return b.String()
}

const configRefHeader = `# Configuration file

Generated from the code by ` + "`ARGUS_UPDATE_DOCS=1 go test ./cmd/argus -run TestConfigReference`" + `; do not edit by hand.

` + "`argus -config.file=argus.yaml`" + ` reads the fields below; every field is also a flag
([flags.md](flags.md)), and a flag given on the command line overrides the file. The names
follow Mimir's where Mimir has the setting (` + "`server.http_listen_port`" + `,
` + "`memberlist.join_members`, `ingester.ring.replication_factor`" + `, ` + "`limits.ingestion_rate`" + `, ...).
A field the file does not name keeps its default; an unknown field is refused with its line.
With ` + "`-config.expand-env`" + `, ` + "`${VAR}` and `${VAR:default}`" + ` are replaced by the environment's
values first. The comma-separated fields (` + "`target`, `memberlist.join_members`,\n`ingester_client.addresses`" + `, ...) may also be YAML lists.

The ` + "`limits`" + ` section holds the defaults of every tenant; per-tenant overrides stay in the
runtime config file (` + "`runtime_config.file`" + `, [limits.md](limits.md)), which is re-read while
running. ` + "`GET /config`" + ` shows the configuration in force as this YAML, and
` + "`GET /config?mode=diff`" + ` only the fields that differ from the defaults.

`

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "int"
	case t.Kind() == reflect.Float64:
		return "float"
	case t.Kind() == reflect.Slice:
		return "list of strings"
	}
	return t.Kind().String()
}

// refDefault is a flag's default as the reference shows it; the host name
// (the default instance ID) is written as such, so that the file does not
// depend on the machine that generated it.
func refDefault(f *flag.Flag) string {
	def := f.DefValue
	if host, _ := os.Hostname(); host != "" && def == host {
		return "<hostname>"
	}
	if def == "" || (def != "true" && def != "false" && strings.ContainsAny(def, ":#,{}[]&*!|>'\"%@` ")) {
		return fmt.Sprintf("%q", def)
	}
	return def
}
