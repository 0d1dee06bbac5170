// Package query evaluates the NAS middleware's query-filters and
// query-options over entries (JSON objects): what virt.instance.query and
// core.get_jobs take.
//
// CONTRACT (issue 16): the query-engine helper replaces this file.
package query

import (
	"encoding/json"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Query is a parsed, validated pair of filters and options.
type Query struct{}

// Parse validates filters (a JSON array, null or absent = all) and
// options (a JSON object, null or absent = defaults). An error is an
// *Error naming the offending path.
func Parse(filters, options json.RawMessage) (Query, error) {
	return Query{}, errdefs.NotImplemented("query filters are not built yet")
}

// Run applies q to entries, each a JSON object decoded into
// map[string]any (numbers as float64 or json.Number). It returns the
// selected, ordered, paged list ([]map[string]any), the count (int) when
// options.count, or one entry (map[string]any) when options.get:
// errdefs.NotFound when none matches.
func (q Query) Run(entries []map[string]any) (any, error) {
	return nil, errdefs.NotImplemented("query filters are not built yet")
}

// Error is a validation error with the attribute path it concerns, as
// the middleware reports it ("query-filters.0.1").
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string { return e.Path + ": " + e.Message }
