package lxd

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// filter is a parsed ?filter= expression, LXD's subset of OData:
//
//	name eq c1 and (status eq Running or config.user.role ne db)
//	not ephemeral eq true
//
// Terms compare one field of an instance (name, status, type,
// architecture, description, location, project, ephemeral, stateful,
// config.K, expanded_config.K) or an image (imageFields) with eq or ne. "and" binds tighter than
// "or". As in LXD, a value is a case-insensitive regular expression
// anchored at both ends (one that does not compile compares as text,
// case folded): lxc passes the user's words through as they are typed, so
// `lxc list status=running` sends "status eq running" for "Running".
// A nil *filter matches everything.
type filter struct {
	or   []*filter // any of these
	and  []*filter // all of these
	not  *filter
	term *term
}

type term struct {
	field string
	eq    bool
	value string
	re    *regexp.Regexp // nil: value is not a regular expression
}

func newTerm(field string, eq bool, value string) *term {
	expr := value
	if !strings.ContainsAny(expr, "^$") {
		expr = "^" + expr + "$"
	}
	re, _ := regexp.Compile("(?i)" + expr)
	return &term{field: field, eq: eq, value: value, re: re}
}

func (t *term) matches(v string) bool {
	if t.re != nil {
		return t.re.MatchString(v)
	}
	return strings.EqualFold(v, t.value)
}

func parseFilter(s string) (*filter, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	p := &filterParser{toks: tokenize(s)}
	f, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, errdefs.Invalid("filter: unexpected %q", p.toks[p.pos])
	}
	return f, nil
}

func tokenize(s string) []string {
	var toks []string
	var cur strings.Builder
	inQuote := false
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
			cur.WriteRune(r)
		case r == '(' || r == ')':
			flush()
			toks = append(toks, string(r))
		case r == ' ' || r == '\t':
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return toks
}

type filterParser struct {
	toks []string
	pos  int
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

// next consumes a token; past the end it gives "" and stays there, so
// that parseFilter's check for trailing tokens stays in range.
func (p *filterParser) next() string {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *filterParser) parseOr() (*filter, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	f := &filter{or: []*filter{left}}
	for strings.EqualFold(p.peek(), "or") {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		f.or = append(f.or, right)
	}
	if len(f.or) == 1 {
		return left, nil
	}
	return f, nil
}

func (p *filterParser) parseAnd() (*filter, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	f := &filter{and: []*filter{left}}
	for strings.EqualFold(p.peek(), "and") {
		p.next()
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		f.and = append(f.and, right)
	}
	if len(f.and) == 1 {
		return left, nil
	}
	return f, nil
}

func (p *filterParser) parseUnary() (*filter, error) {
	switch t := p.peek(); {
	case strings.EqualFold(t, "not"):
		p.next()
		inner, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &filter{not: inner}, nil
	case t == "(":
		p.next()
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, errdefs.Invalid("filter: missing )")
		}
		return inner, nil
	}
	field, op, value := p.next(), p.next(), p.next()
	if field == "" || op == "" || value == "" {
		return nil, errdefs.Invalid("filter: incomplete expression")
	}
	switch strings.ToLower(op) {
	case "eq":
		return &filter{term: newTerm(field, true, value)}, nil
	case "ne":
		return &filter{term: newTerm(field, false, value)}, nil
	default:
		return nil, errdefs.Invalid("filter: operator %q: want eq or ne", op)
	}
}

// match reports whether the object whose fields field returns matches.
func (f *filter) match(field func(name string) string) bool {
	switch {
	case f == nil:
		return true
	case f.term != nil:
		return f.term.matches(field(f.term.field)) == f.term.eq
	case f.not != nil:
		return !f.not.match(field)
	case len(f.and) > 0:
		for _, g := range f.and {
			if !g.match(field) {
				return false
			}
		}
		return true
	default:
		for _, g := range f.or {
			if g.match(field) {
				return true
			}
		}
		return false
	}
}

// instanceFields returns an instance's filterable fields, by JSON name.
func instanceFields(in api.Instance) func(string) string {
	return func(field string) string { return instanceField(in, field) }
}

func instanceField(in api.Instance, field string) string {
	if k, ok := strings.CutPrefix(field, "expanded_config."); ok {
		return in.ExpandedConfig[k]
	}
	if k, ok := strings.CutPrefix(field, "config."); ok {
		return in.Config[k]
	}
	switch field {
	case "name":
		return in.Name
	case "status":
		return in.Status
	case "type":
		return in.Type
	case "architecture":
		return in.Architecture
	case "description":
		return in.Description
	case "location":
		return in.Location
	case "project":
		return in.Project
	case "ephemeral":
		return strconv.FormatBool(in.Ephemeral)
	case "stateful":
		return strconv.FormatBool(in.Stateful)
	}
	return ""
}

// imageFields returns an image's filterable fields, by JSON name.
// lxc sends only the keys without a dot (properties.os stays on its side).
func imageFields(img api.Image) func(string) string {
	return func(field string) string {
		if k, ok := strings.CutPrefix(field, "properties."); ok {
			return img.Properties[k]
		}
		switch field {
		case "fingerprint":
			return img.Fingerprint
		case "filename":
			return img.Filename
		case "architecture":
			return img.Architecture
		case "type":
			return img.Type
		case "project":
			return img.Project
		case "public":
			return strconv.FormatBool(img.Public)
		case "cached":
			return strconv.FormatBool(img.Cached)
		case "auto_update":
			return strconv.FormatBool(img.AutoUpdate)
		}
		return ""
	}
}
