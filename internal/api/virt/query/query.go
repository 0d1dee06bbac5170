package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// MaxLimit is the largest limit the middleware takes.
const MaxLimit = 10000

// Query is a parsed, validated pair of filters and options. The zero
// Query returns every entry.
type Query struct {
	filter node // nil: every entry
	sel    *projNode
	order  []orderKey
	offset int
	limit  int
	count  bool
	get    bool
	extra  map[string]any
}

// Paths of the two arguments in errors, as the middleware names them.
const (
	filtersPath = "query-filters"
	optionsPath = "query-options"
)

// Parse validates filters (a JSON array, null or absent = all) and
// options (a JSON object, null or absent = defaults). An error is an
// *Error naming the offending path.
func Parse(filters, options json.RawMessage) (Query, error) {
	var q Query
	f, err := decode(filters, filtersPath)
	if err != nil {
		return Query{}, err
	}
	if f != nil {
		n, err := compileFilters(f, filtersPath)
		if err != nil {
			return Query{}, err
		}
		if a, ok := n.(andNode); !ok || len(a) > 0 {
			q.filter = n
		}
	}
	o, err := decode(options, optionsPath)
	if err != nil {
		return Query{}, err
	}
	if o != nil {
		if err := q.parseOptions(o); err != nil {
			return Query{}, err
		}
	}
	return q, nil
}

// decode reads one argument with numbers kept exact; empty or null is nil.
func decode(raw json.RawMessage, path string) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, &Error{Path: path, Message: "invalid JSON: " + err.Error()}
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, &Error{Path: path, Message: "invalid JSON: data after the value"}
	}
	return v, nil
}

// optionKinds are the query-options the middleware's model declares.
// relationships, extend, extend_context, prefix and force_sql_filters
// steer its database layer: taken (typed) and of no effect here, since
// entries are computed.
var optionKinds = map[string]string{
	"select": "list", "order_by": "list", "count": "bool", "get": "bool",
	"offset": "int", "limit": "int", "extra": "object",
	"relationships": "bool", "force_sql_filters": "bool",
	"extend": "string|null", "extend_context": "string|null", "prefix": "string|null",
}

func (q *Query) parseOptions(raw any) error {
	o, ok := raw.(map[string]any)
	if !ok {
		return &Error{Path: optionsPath, Message: "query-options must be an object"}
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := optionsPath + "." + k
		want, known := optionKinds[k]
		if !known {
			return &Error{Path: p, Message: fmt.Sprintf("unknown query option %q: extra inputs are not permitted (options: count, extra, get, limit, offset, order_by, select)", k)}
		}
		if err := checkKind(o[k], want, p); err != nil {
			return err
		}
	}
	if v, ok := o["count"]; ok {
		q.count = v.(bool)
	}
	if v, ok := o["get"]; ok {
		q.get = v.(bool)
	}
	if v, ok := o["extra"]; ok {
		q.extra = v.(map[string]any)
	}
	if v, ok := o["offset"]; ok {
		n, _ := v.(json.Number).Int64()
		if n < 0 {
			return &Error{Path: optionsPath + ".offset", Message: "offset must be greater than or equal to 0"}
		}
		q.offset = int(n)
	}
	if v, ok := o["limit"]; ok {
		n, _ := v.(json.Number).Int64()
		if n < 0 || n > MaxLimit {
			return &Error{Path: optionsPath + ".limit", Message: fmt.Sprintf("limit must be between 0 (no limit) and %d", MaxLimit)}
		}
		q.limit = int(n)
	}
	switch {
	case q.get && q.limit > 1, q.get && q.offset != 0:
		return &Error{Path: optionsPath, Message: "invalid options combination: get implies a single result (no offset, limit at most 1)"}
	case q.get && q.count:
		return &Error{Path: optionsPath, Message: "invalid options combination: count and get exclude each other"}
	}
	var aliases map[string][]seg
	if v, ok := o["select"]; ok {
		sel, al, err := compileSelect(v, optionsPath+".select")
		if err != nil {
			return err
		}
		if len(sel.children) > 0 {
			q.sel, aliases = sel, al
		}
	}
	if v, ok := o["order_by"]; ok {
		order, err := compileOrder(v, optionsPath+".order_by")
		if err != nil {
			return err
		}
		// The middleware orders the selected objects: a select alias
		// in order_by means the field it renames.
		for i := range order {
			if src, ok := aliases[order[i].segs[0].key]; ok {
				order[i].segs = append(append([]seg{}, src...), order[i].segs[1:]...)
			}
		}
		q.order = order
	}
	return nil
}

// checkKind checks an option's JSON type strictly, as the middleware's
// models do (no "1" for 1, no 1 for true, no 1.0 for an integer).
func checkKind(v any, want, path string) error {
	ok := false
	switch want {
	case "list":
		_, ok = v.([]any)
	case "bool":
		_, ok = v.(bool)
	case "object":
		_, ok = v.(map[string]any)
	case "string|null":
		_, isStr := v.(string)
		ok = isStr || v == nil
	case "int":
		if n, isNum := v.(json.Number); isNum && !strings.ContainsAny(string(n), ".eE") {
			_, err := n.Int64()
			ok = err == nil
		}
	}
	if !ok {
		name := map[string]string{"list": "a list", "bool": "a boolean", "object": "an object", "string|null": "a string or null", "int": "an integer"}[want]
		return &Error{Path: path, Message: fmt.Sprintf("must be %s, not a %s", name, kindOf(v))}
	}
	return nil
}

// Run applies q to entries, each a JSON object decoded into
// map[string]any (numbers as float64 or json.Number). It returns the
// selected, ordered, paged list ([]map[string]any), the count (int) when
// options.count, or one entry (map[string]any) when options.get:
// errdefs.NotFound when none matches.
func (q Query) Run(entries []map[string]any) (any, error) {
	if q.get && len(q.order) == 0 {
		// The first match is the answer: stop there.
		for _, e := range entries {
			ok, err := q.Match(e)
			if err != nil {
				return nil, err
			}
			if ok {
				return q.project(e)
			}
		}
		return nil, errdefs.NotFound("no entry matches the query filters")
	}
	matched := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		ok, err := q.Match(e)
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, e)
		}
	}
	if q.count {
		return len(matched), nil
	}
	if err := sortEntries(matched, q.order); err != nil {
		return nil, err
	}
	if q.get {
		if len(matched) == 0 {
			return nil, errdefs.NotFound("no entry matches the query filters")
		}
		return q.project(matched[0])
	}
	matched = matched[min(q.offset, len(matched)):]
	if q.limit > 0 && q.limit < len(matched) {
		matched = matched[:q.limit]
	}
	if q.sel == nil {
		return matched, nil
	}
	out := make([]map[string]any, len(matched))
	for i, e := range matched {
		p, err := q.sel.project(e)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// Match tells whether one entry passes the filters (select and the other
// options do not apply): for event streams filtered like a query.
func (q Query) Match(entry map[string]any) (bool, error) {
	if q.filter == nil {
		return true, nil
	}
	return q.filter.match(entry)
}

// Project applies select to one entry (the entry itself without select).
func (q Query) Project(entry map[string]any) (map[string]any, error) {
	return q.project(entry)
}

func (q Query) project(e map[string]any) (map[string]any, error) {
	if q.sel == nil {
		return e, nil
	}
	return q.sel.project(e)
}

// Count tells whether Run returns a count (options.count).
func (q Query) Count() bool { return q.count }

// Get tells whether Run returns one entry (options.get).
func (q Query) Get() bool { return q.get }

// Extra is options.extra, whose keys each method defines (nil when none).
func (q Query) Extra() map[string]any { return q.extra }

// Error is a validation error with the attribute path it concerns, as
// the middleware reports it ("query-filters.0.1").
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string { return e.Path + ": " + e.Message }

// Is makes an *Error an errdefs.ErrInvalidArgument for the edges'
// status mapping.
func (e *Error) Is(target error) bool { return target == errdefs.ErrInvalidArgument }
