// Package query evaluates the NAS middleware's query-filters and
// query-options over entries (JSON objects): what virt.instance.query and
// core.get_jobs take.
//
// What it owns
//   - Parse (query.go): checks filters and options once, as the
//     middleware's validators do, and compiles them: field paths split,
//     operators resolved, regular expressions compiled, case-insensitive
//     operands folded, "in" lists turned into sets. Every mistake is an
//     *Error naming its attribute path ("query-filters.0.1",
//     "query-options.limit"); *Error is of kind errdefs.ErrInvalidArgument.
//   - Run: filter (filter.go), count, order (order.go), offset/limit, get,
//     then select (select.go) over the entries left, in that order. The
//     inner loop is type switches over what encoding/json decodes (no
//     reflection, no allocation per entry unless something is selected).
//
// Semantics follow the middleware's current engine (truenas_pyfilter, the
// C rewrite of middlewared.utils.filter_list) where it and 25.04's Python
// one agree; where they differ:
//   - order_by's first key is the primary one (the C engine's; 25.04
//     sorted key by key, leaving the last one primary);
//   - "C~" is accepted (the C engine's), as a case-insensitive regex;
//   - ["OR", []] is refused (25.04's check; the C engine matches nothing);
//   - filter nesting is bounded at MaxDepth;
//   - ".$date" timestamp operands are not special (25.04's mapping did not
//     work and the C engine dropped it).
//
// Python's comparisons are kept: 1 == 1.0 == true, ordering a string
// against a number or anything against null is an error (the middleware
// raises TypeError), a missing field matches nothing (not even "!="), a
// path that meets null or a scalar before its end compares that value, a
// list in a path is indexed ("aliases.0.address") or searched
// ("aliases.*.address": any element). "~" is Python's re.match (anchored
// at the start) in RE2 syntax: look-arounds and back-references are
// refused at Parse.
//
// Where hangard improves on the middleware without changing what a query
// that works there returns: order_by is applied to the entries before
// select (so ordering by a field that is not selected works; a select
// alias in order_by means its source), and null detection for
// nulls_first:/nulls_last: follows the whole dotted path (the C engine
// looks the dotted string up as one top-level key).
//
// It owns no state and touches nothing but its arguments: Run never
// modifies the entries; what it returns may share values with them. A
// parsed Query is immutable: one may serve concurrent Runs (an event
// stream's Match beside a query).
package query
