package main

import (
	"flag"
	"fmt"
	"strings"
)

// flagReference renders every flag of the binary as the Markdown table of
// docs/flags.md, sorted by name. A test keeps the file in step with the code.
func flagReference() string {
	var cfg Config
	fs := flag.NewFlagSet("argus", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	var b strings.Builder
	b.WriteString("# Flags\n\nGenerated from the code by `ARGUS_UPDATE_DOCS=1 go test ./cmd/argus -run TestFlagReference`; do not edit by hand.\n\n")
	b.WriteString("| Flag | Default | Description |\n| --- | --- | --- |\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(&b, "| `-%s` | `%s` | %s |\n", f.Name, def, strings.ReplaceAll(f.Usage, "|", `\|`))
	})
	return b.String()
}
