package query

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

const (
	nullsFirstPrefix = "nulls_first:"
	nullsLastPrefix  = "nulls_last:"
)

type nullsMode uint8

const (
	nullsError nullsMode = iota // a null to order is an error, as in the middleware
	nullsFirst
	nullsLast
)

// orderKey is one order_by directive.
type orderKey struct {
	path    string // its attribute path, for errors
	field   string
	segs    []seg
	reverse bool
	nulls   nullsMode
}

func compileOrder(raw any, path string) ([]orderKey, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, &Error{Path: path, Message: "order_by is a list of field names"}
	}
	out := make([]orderKey, 0, len(list))
	for i, e := range list {
		ip := path + "." + strconv.Itoa(i)
		s, ok := e.(string)
		if !ok {
			return nil, &Error{Path: ip, Message: "an order_by item is a field name (a string)"}
		}
		k := orderKey{path: ip}
		switch {
		case strings.HasPrefix(s, nullsFirstPrefix):
			k.nulls, s = nullsFirst, s[len(nullsFirstPrefix):]
		case strings.HasPrefix(s, nullsLastPrefix):
			k.nulls, s = nullsLast, s[len(nullsLastPrefix):]
		}
		if strings.HasPrefix(s, "-") {
			k.reverse, s = true, s[1:]
		}
		if s == "" {
			return nil, &Error{Path: ip, Message: "order_by field name is empty"}
		}
		k.field, k.segs = s, splitPath(s)
		out = append(out, k)
	}
	return out, nil
}

// orderValue reads a sort key: through objects and list indexes; absent,
// null or unreachable is null.
func orderValue(e map[string]any, segs []seg) any {
	var cur any = e
	for _, s := range segs {
		switch kindOf(cur) {
		case kObj:
			v, ok, _ := objGet(cur, s.key)
			if !ok {
				return nil
			}
			cur = v
		case kList:
			if s.idx < 0 || s.idx >= listLen(cur) {
				return nil
			}
			cur = listAt(cur, s.idx)
		default:
			return nil
		}
	}
	return cur
}

// sortEntries orders entries in place by keys, the first the primary one;
// the sort is stable (ties keep the entries' order).
func sortEntries(entries []map[string]any, keys []orderKey) error {
	if len(keys) == 0 || len(entries) < 2 {
		return nil
	}
	type item struct {
		e    map[string]any
		vals []any
	}
	nk := len(keys)
	vals := make([]any, len(entries)*nk)
	items := make([]item, len(entries))
	for i, e := range entries {
		v := vals[i*nk : (i+1)*nk : (i+1)*nk]
		for j := range keys {
			v[j] = orderValue(e, keys[j].segs)
		}
		items[i] = item{e: e, vals: v}
	}
	var sortErr error
	slices.SortStableFunc(items, func(a, b item) int {
		for j := range keys {
			k := &keys[j]
			x, y := a.vals[j], b.vals[j]
			xn, yn := x == nil, y == nil
			if xn || yn {
				if k.nulls == nullsError {
					if sortErr == nil {
						sortErr = &Error{Path: k.path, Message: fmt.Sprintf(
							"cannot sort by %q because the field contains null values; use \"nulls_first:%[2]s\" or \"nulls_last:%[2]s\" to place them",
							k.field, orderSpec(k))}
					}
					return 0
				}
				switch {
				case xn && yn:
					continue
				case xn == (k.nulls == nullsFirst):
					return -1
				default:
					return 1
				}
			}
			c, ok := compare(x, y)
			if !ok {
				if sortErr == nil {
					sortErr = &Error{Path: k.path, Message: fmt.Sprintf("cannot sort by %q: it holds values that do not order against each other (%s and %s)", k.field, kindOf(x), kindOf(y))}
				}
				return 0
			}
			if k.reverse {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	if sortErr != nil {
		return sortErr
	}
	for i := range items {
		entries[i] = items[i].e
	}
	return nil
}

// orderSpec is a key as written, without its nulls prefix.
func orderSpec(k *orderKey) string {
	if k.reverse {
		return "-" + k.field
	}
	return k.field
}
