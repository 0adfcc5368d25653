// Package archtest enforces the import arrows between Argus's top-level
// packages (CONTRIBUTING.md, "Packages"): a forbidden arrow fails CI.
package archtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/argus-tsdb/argus"

// rules maps a package to the packages it must not depend on, even
// transitively.
var rules = map[string][]string{
	"proto/arguspb": {"ring", "storage", "ingester", "distributor", "querier", "cmd"},
	// The public query API is a contract of its own: it never leans on the
	// internal one, so that the internal one may change between releases.
	"proto/argusquerypb": {"proto/arguspb", "ring", "storage", "ingester", "distributor", "querier", "cmd"},
	// The Go client of the query API talks to it over gRPC only.
	"client":      {"proto/arguspb", "ring", "storage", "ingester", "distributor", "querier", "limits", "cmd", "internal"},
	"ring":        {"distributor", "ingester", "querier", "storage", "scraper"},
	"storage":     {"ring", "ingester", "distributor", "querier"},
	"ingester":    {"distributor", "querier"},
	"distributor": {"ingester", "storage", "querier"},
	"querier":     {"distributor", "ingester"},
	"limits":      {"distributor", "ingester", "querier", "storage", "ring"},
	// The scraper pushes through a Pusher (cmd hands it the distributor's
	// handler): it never reaches into the write path's internals.
	"scraper": {"distributor", "ingester", "querier", "storage"},
	// The ruler reads through a Queryable and writes through a Pusher, both
	// handed to it by cmd.
	"ruler": {"distributor", "ingester", "querier", "storage", "scraper"},
	// The error contract and authentication are leaves the components use.
	"internal/apierror": {"distributor", "ingester", "querier", "storage", "ring", "limits", "proto/arguspb"},
	"internal/auth":     {"distributor", "ingester", "querier", "storage", "ring", "limits", "proto/arguspb"},
}

func TestImportArrows(t *testing.T) {
	for pkg, forbidden := range rules {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"/"+pkg).CombinedOutput()
			require.NoError(t, err, string(out))
			deps := map[string]bool{}
			for _, d := range strings.Fields(string(out)) {
				deps[d] = true
			}
			for _, f := range forbidden {
				for d := range deps {
					if d == module+"/"+f || strings.HasPrefix(d, module+"/"+f+"/") {
						t.Errorf("%s must not import %s (found %s)", pkg, f, d)
					}
				}
			}
		})
	}
}
