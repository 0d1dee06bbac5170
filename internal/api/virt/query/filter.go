package query

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxDepth bounds the nesting of OR filters (the middleware's engine has
// a bound too): a deeper query-filters is refused at Parse.
const MaxDepth = 64

type opCode uint8

const (
	opEQ opCode = iota
	opNE
	opGT
	opGE
	opLT
	opLE
	opRE
	opIN
	opNIN
	opRIN
	opRNIN
	opSW
	opNSW
	opEW
	opNEW
)

var opCodes = map[string]opCode{
	"=": opEQ, "!=": opNE, ">": opGT, ">=": opGE, "<": opLT, "<=": opLE,
	"~": opRE, "in": opIN, "nin": opNIN, "rin": opRIN, "rnin": opRNIN,
	"^": opSW, "!^": opNSW, "$": opEW, "!$": opNEW,
}

// node is a compiled filter: a condition, an AND of nodes or an OR.
type node interface {
	match(entry any) (bool, error)
}

type andNode []node

func (a andNode) match(e any) (bool, error) {
	for _, n := range a {
		if ok, err := n.match(e); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

type orNode []node

func (o orNode) match(e any) (bool, error) {
	for _, n := range o {
		if ok, err := n.match(e); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// cond is one [field, op, value].
type cond struct {
	path   string // its attribute path, for errors: "query-filters.0"
	field  string
	opName string
	segs   []seg
	op     opCode
	ci     bool
	value  any            // the operand (folded when ci)
	str    string         // the operand when it is a string
	re     *regexp.Regexp // "~"
	// strSet holds the operand of in/nin when it is a list of strings
	// only: a lookup instead of a scan.
	strSet map[string]struct{}
}

func (c *cond) match(e any) (bool, error) { return c.from(e, 0) }

// from walks the path from segs[i]. A missing key is no match; null or a
// scalar met before the end is the value compared (the middleware's
// getattr fallback); "*" matches when any element of the list does.
func (c *cond) from(cur any, i int) (bool, error) {
	for ; i < len(c.segs); i++ {
		s := &c.segs[i]
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[s.key]
			if !ok {
				return false, nil
			}
			cur = v
		case map[string]string:
			v, ok := x[s.key]
			if !ok {
				return false, nil
			}
			cur = v
		case []any, []string, []map[string]any:
			n := listLen(x)
			switch {
			case s.wild:
				for j := 0; j < n; j++ {
					if ok, err := c.from(listAt(x, j), i+1); ok || err != nil {
						return ok, err
					}
				}
				return false, nil
			case s.idx >= 0:
				if s.idx < n {
					cur = listAt(x, s.idx)
				} else {
					cur = nil
				}
			default:
				return false, nil
			}
		default:
			return c.apply(cur)
		}
	}
	return c.apply(cur)
}

func (c *cond) apply(v any) (bool, error) {
	src := v
	if c.ci && v != nil {
		f, ok := foldValue(v)
		if !ok {
			return false, c.typeErr(v, "a case-insensitive operator needs a string or a list of strings")
		}
		src = f
	}
	switch c.op {
	case opEQ:
		return equal(src, c.value), nil
	case opNE:
		return !equal(src, c.value), nil
	case opGT, opGE, opLT, opLE:
		r, ok := compare(src, c.value)
		if !ok {
			return false, c.typeErr(v, "values of these types do not order")
		}
		switch c.op {
		case opGT:
			return r > 0, nil
		case opGE:
			return r >= 0, nil
		case opLT:
			return r < 0, nil
		}
		return r <= 0, nil
	case opRE:
		switch s := src.(type) {
		case nil:
			// The middleware matches null as "" (nullable strings).
			return c.re.MatchString(""), nil
		case string:
			return c.re.MatchString(s), nil
		}
		return false, c.typeErr(v, "a regular expression matches strings")
	case opIN:
		return c.in(v, src)
	case opNIN:
		if v == nil {
			return false, nil
		}
		ok, err := c.in(v, src)
		return !ok && err == nil, err
	case opRIN, opRNIN:
		if v == nil {
			return false, nil
		}
		ok, valid := contains(src, c.value)
		if !valid {
			return false, c.typeErr(v, "the field must be a list, a string or an object that can hold the value")
		}
		return ok == (c.op == opRIN), nil
	case opSW, opNSW, opEW, opNEW:
		if v == nil {
			return false, nil
		}
		s, ok := src.(string)
		if !ok {
			return false, c.typeErr(v, "the field must be a string")
		}
		var hit bool
		if c.op == opSW || c.op == opNSW {
			hit = strings.HasPrefix(s, c.str)
		} else {
			hit = strings.HasSuffix(s, c.str)
		}
		return hit == (c.op == opSW || c.op == opEW), nil
	}
	return false, nil
}

// in is Python's "src in operand".
func (c *cond) in(v, src any) (bool, error) {
	if c.strSet != nil {
		s, ok := src.(string)
		if !ok {
			return false, nil // no string equals a non-string
		}
		_, found := c.strSet[s]
		return found, nil
	}
	ok, valid := contains(c.value, src)
	if !valid {
		return false, c.typeErr(v, "only a string is looked for in a string")
	}
	return ok, nil
}

func (c *cond) typeErr(v any, why string) error {
	return &Error{Path: c.path, Message: fmt.Sprintf("%q %s %s: the field holds a %s, the value is a %s: %s",
		c.field, c.opName, short(c.value), kindOf(v), kindOf(c.value), why)}
}

// short renders an operand for a message.
func short(v any) string {
	s := fmt.Sprint(v)
	if str, ok := v.(string); ok {
		s = strconv.Quote(str)
	}
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// compileFilters compiles query-filters: a list of filters, ANDed.
func compileFilters(raw any, path string) (node, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, &Error{Path: path, Message: "query-filters must be a list of filters"}
	}
	return compileAnd(list, path, 0)
}

func compileAnd(list []any, path string, depth int) (node, error) {
	out := make(andNode, 0, len(list))
	for i, f := range list {
		n, err := compileFilter(f, path+"."+strconv.Itoa(i), depth)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 1 {
		return out[0], nil
	}
	return out, nil
}

func compileFilter(raw any, path string, depth int) (node, error) {
	if depth > MaxDepth {
		return nil, &Error{Path: path, Message: fmt.Sprintf("query-filters nest deeper than %d levels", MaxDepth)}
	}
	f, ok := raw.([]any)
	if !ok {
		return nil, &Error{Path: path, Message: `a filter is a list: [field, operator, value] or ["OR", [filter, ...]]`}
	}
	switch len(f) {
	case 3:
		return compileCond(f, path)
	case 2:
		return compileOr(f, path, depth)
	}
	return nil, &Error{Path: path, Message: fmt.Sprintf(`invalid filter of %d items: [field, operator, value] or ["OR", [filter, ...]]`, len(f))}
}

// compileOr compiles ["OR", [branch, ...]]; a branch is a filter, or a
// list of filters that must all match.
func compileOr(f []any, path string, depth int) (node, error) {
	if tag, _ := f[0].(string); tag != "OR" {
		return nil, &Error{Path: path + ".0", Message: fmt.Sprintf("invalid operation %s: a filter of two items is [\"OR\", [filter, ...]]", short(f[0]))}
	}
	branches, ok := f[1].([]any)
	if !ok {
		return nil, &Error{Path: path + ".1", Message: "the branches of OR are a list"}
	}
	if len(branches) == 0 {
		return nil, &Error{Path: path + ".1", Message: "OR filter requires at least one branch"}
	}
	out := make(orNode, 0, len(branches))
	for j, b := range branches {
		bp := path + ".1." + strconv.Itoa(j)
		bl, ok := b.([]any)
		if !ok || len(bl) == 0 {
			return nil, &Error{Path: bp, Message: "an OR branch is a filter or a non-empty list of filters"}
		}
		var n node
		var err error
		if _, conj := bl[0].([]any); conj {
			n, err = compileAnd(bl, bp, depth+1)
		} else {
			n, err = compileFilter(bl, bp, depth+1)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func compileCond(f []any, path string) (node, error) {
	field, ok := f[0].(string)
	if !ok || field == "" {
		return nil, &Error{Path: path + ".0", Message: "the field of a filter is a non-empty string"}
	}
	opName, ok := f[1].(string)
	if !ok {
		return nil, &Error{Path: path + ".1", Message: "the operator of a filter is a string"}
	}
	base, ci := opName, false
	if strings.HasPrefix(opName, "C") {
		base, ci = opName[1:], true
	}
	op, known := opCodes[base]
	if !known {
		return nil, &Error{Path: path + ".1", Message: fmt.Sprintf("invalid operation %q: one of =, !=, >, >=, <, <=, ~, in, nin, rin, rnin, ^, !^, $, !$, each also with a C prefix (case-insensitive)", opName)}
	}
	c := &cond{path: path, field: field, opName: opName, segs: splitPath(field), op: op, ci: ci, value: f[2]}
	vpath := path + ".2"
	if ci {
		folded, ok := foldValue(c.value)
		if !ok {
			return nil, &Error{Path: vpath, Message: fmt.Sprintf("%q needs a string, a list of strings or null", opName)}
		}
		c.value = folded
	}
	k := kindOf(c.value)
	switch op {
	case opGT, opGE, opLT, opLE:
		if k != kNum && k != kStr && k != kBool {
			return nil, &Error{Path: vpath, Message: fmt.Sprintf("%q compares with a number or a string, not a %s", opName, k)}
		}
	case opRE:
		s, ok := c.value.(string)
		if !ok {
			return nil, &Error{Path: vpath, Message: fmt.Sprintf("%q needs a regular expression (a string)", opName)}
		}
		expr := "^(?:" + f[2].(string) + ")" // re.match: anchored at the start
		if ci {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, &Error{Path: vpath, Message: fmt.Sprintf("invalid regular expression %q (RE2 syntax): %v", f[2], err)}
		}
		c.re, c.str = re, s
	case opIN, opNIN:
		switch k {
		case kStr:
			c.str = c.value.(string)
		case kList:
			c.strSet = stringSet(c.value.([]any))
		default:
			return nil, &Error{Path: vpath, Message: fmt.Sprintf("%q needs a list (or a string), not a %s", opName, k)}
		}
	case opSW, opNSW, opEW, opNEW:
		s, ok := c.value.(string)
		if !ok {
			return nil, &Error{Path: vpath, Message: fmt.Sprintf("%q needs a string, not a %s", opName, k)}
		}
		c.str = s
	}
	return c, nil
}

// stringSet is the set of a list's elements when all are strings, else
// nil.
func stringSet(l []any) map[string]struct{} {
	set := make(map[string]struct{}, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil
		}
		set[s] = struct{}{}
	}
	return set
}
