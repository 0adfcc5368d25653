package apierror

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/argus-tsdb/argus/limits"
)

// TestErrorsDoc keeps the generated part of docs/errors.md in step with
// Catalogue.
func TestErrorsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "errors.md")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	doc := string(raw)
	begin, end := strings.Index(doc, DocBegin), strings.Index(doc, DocEnd)
	require.True(t, begin >= 0 && end > begin, "docs/errors.md lacks the generated markers")
	updated := doc[:begin] + Reference(limits.FieldOfFlag) + doc[end+len(DocEnd)+1:]
	if os.Getenv("ARGUS_UPDATE_DOCS") == "1" {
		require.NoError(t, os.WriteFile(path, []byte(updated), 0o644))
		doc = updated
	}
	require.Equal(t, updated, doc, "docs/errors.md is stale: run ARGUS_UPDATE_DOCS=1 go test ./internal/apierror")
}

// TestCatalogue checks each entry: a well-formed ID, a status that follows
// the rules of the package doc, and a limit flag (with its runtime config
// field) that exists.
func TestCatalogue(t *testing.T) {
	var l limits.Limits
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	l.RegisterFlags(fs)
	fields := l.Fields()
	for _, e := range Catalogue {
		require.True(t, strings.HasPrefix(string(e.ID), Prefix), e.ID)
		require.Equal(t, strings.ToLower(string(e.ID)), string(e.ID))
		require.NotEmpty(t, e.Meaning, e.ID)
		require.NotEmpty(t, e.Action, e.ID)
		require.Equal(t, e.Retry, e.Status >= 500 || e.Status == 429, "%s: retry must match the status", e.ID)
		if e.Scope == ScopeSeries {
			require.Equal(t, 400, e.Status, e.ID)
		}
		if e.Flag != "" {
			require.NotNil(t, fs.Lookup(e.Flag), "%s names an unknown limit flag -%s", e.ID, e.Flag)
			require.Contains(t, fields, limits.FieldOfFlag(e.Flag), e.ID)
		}
		got, ok := Lookup(e.ID)
		require.True(t, ok)
		require.Equal(t, e, got)
		require.Equal(t, e.Status, e.ID.Status())
	}
	require.Equal(t, 500, ID("err-argus-nope").Status())
}

func TestError(t *testing.T) {
	base := errors.New("base")
	err := Errorf(MaxSeriesPerUser, "tenant %q: %w", "t", base)
	require.Equal(t, `err-argus-max-series-per-user: tenant "t": base`, err.Error())
	require.ErrorIs(t, err, base)
	id, ok := IDOf(errors.Join(errors.New("x"), err))
	require.True(t, ok)
	require.Equal(t, MaxSeriesPerUser, id)
	_, ok = IDOf(base)
	require.False(t, ok)
	require.Equal(t, "-a.b=3", LimitText("a.b", 3))
}
