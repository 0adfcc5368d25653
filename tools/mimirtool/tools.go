//go:build tools

// Package tools imports mimirtool so that go.mod pins its module.
package tools

import _ "github.com/grafana/mimir/cmd/mimirtool"
