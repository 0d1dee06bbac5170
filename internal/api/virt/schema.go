package virt

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// A small JSON-schema-like checker for the seeds' argument models: every
// field's type, nullability, range, length, enum and const, and
// additionalProperties=false, each error naming the attribute's path as
// the middleware does ("virt.instance.create.devices.0.source_port").
// Values come from encoding/json with UseNumber.

type kind int

const (
	kString kind = iota
	kInt
	kBool
	kStringMap // an object whose every value is a string
	kUnion     // an object picked among variants by a discriminator
	kUnionList // an array of kUnion items
)

type field struct {
	name     string
	kind     kind
	nullable bool
	required bool
	// def is applied when the field is absent; hasDef says there is one
	// (a nil def is a null default).
	def    any
	hasDef bool
	minLen int
	maxLen int // 0: no limit
	min    *int64
	max    *int64
	enum   []string
	// cnst is a const string's only value.
	cnst  string
	union *union
}

type schema struct{ fields []field }

type union struct {
	key      string
	variants map[string]*schema
}

func i64(v int64) *int64 { return &v }

// check validates obj (a decoded JSON value) against s at path, adds
// what is wrong to errs and returns the object with defaults applied.
func (s *schema) check(path string, v any, errs *validationErrors) map[string]any {
	obj, ok := v.(map[string]any)
	if !ok {
		errs.add(path, "Input should be a valid dictionary (got %s)", jsonType(v))
		return nil
	}
	out := make(map[string]any, len(s.fields))
	for k := range obj {
		if !slices.ContainsFunc(s.fields, func(f field) bool { return f.name == k }) {
			errs.add(join(path, k), "Extra inputs are not permitted")
		}
	}
	for _, f := range s.fields {
		val, present := obj[f.name]
		p := join(path, f.name)
		if !present {
			switch {
			case f.required:
				errs.add(p, "Field required")
			case f.hasDef:
				out[f.name] = f.def
			}
			continue
		}
		if val == nil {
			if !f.nullable {
				errs.add(p, "Input should not be null")
				continue
			}
			out[f.name] = nil
			continue
		}
		if got, ok := f.checkValue(p, val, errs); ok {
			out[f.name] = got
		}
	}
	return out
}

func (f *field) checkValue(p string, val any, errs *validationErrors) (any, bool) {
	switch f.kind {
	case kString:
		s, ok := val.(string)
		if !ok {
			errs.add(p, "Input should be a valid string (got %s)", jsonType(val))
			return nil, false
		}
		n := len([]rune(s))
		switch {
		case f.cnst != "" && s != f.cnst:
			errs.add(p, "Input should be '%s'", f.cnst)
		case f.enum != nil && !slices.Contains(f.enum, s):
			errs.add(p, "Input should be %s", quoteList(f.enum))
		case n < f.minLen:
			errs.add(p, "String should have at least %d character(s)", f.minLen)
		case f.maxLen > 0 && n > f.maxLen:
			errs.add(p, "String should have at most %d characters", f.maxLen)
		default:
			return s, true
		}
		return nil, false
	case kInt:
		n, ok := asInt(val)
		if !ok {
			errs.add(p, "Input should be a valid integer (got %s)", jsonType(val))
			return nil, false
		}
		if f.min != nil && n < *f.min {
			errs.add(p, "Input should be greater than or equal to %d", *f.min)
			return nil, false
		}
		if f.max != nil && n > *f.max {
			errs.add(p, "Input should be less than or equal to %d", *f.max)
			return nil, false
		}
		return n, true
	case kBool:
		b, ok := val.(bool)
		if !ok {
			errs.add(p, "Input should be a valid boolean (got %s)", jsonType(val))
			return nil, false
		}
		return b, true
	case kStringMap:
		m, ok := val.(map[string]any)
		if !ok {
			errs.add(p, "Input should be a valid dictionary (got %s)", jsonType(val))
			return nil, false
		}
		out := make(map[string]string, len(m))
		good := true
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				errs.add(join(p, k), "Input should be a valid string (got %s)", jsonType(v))
				good = false
				continue
			}
			out[k] = s
		}
		return out, good
	case kUnion:
		return f.union.check(p, val, errs)
	case kUnionList:
		list, ok := val.([]any)
		if !ok {
			errs.add(p, "Input should be a valid list (got %s)", jsonType(val))
			return nil, false
		}
		out := make([]map[string]any, 0, len(list))
		before := len(*errs)
		for i, item := range list {
			if m, ok := f.union.check(join(p, strconv.Itoa(i)), item, errs); ok {
				out = append(out, m)
			}
		}
		return out, len(*errs) == before
	}
	return nil, false
}

// check picks the variant named by the discriminator and checks it.
func (u *union) check(p string, val any, errs *validationErrors) (map[string]any, bool) {
	obj, ok := val.(map[string]any)
	if !ok {
		errs.add(p, "Input should be a valid dictionary (got %s)", jsonType(val))
		return nil, false
	}
	tag, _ := obj[u.key].(string)
	v, ok := u.variants[tag]
	if !ok {
		names := make([]string, 0, len(u.variants))
		for n := range u.variants {
			names = append(names, n)
		}
		slices.Sort(names)
		if _, present := obj[u.key]; !present {
			errs.add(join(p, u.key), "Unable to extract tag using discriminator '%s'", u.key)
		} else {
			errs.add(join(p, u.key), "Input tag '%v' found using '%s' does not match any of the expected tags: %s", obj[u.key], u.key, quoteList(names))
		}
		return nil, false
	}
	before := len(*errs)
	out := v.check(p, obj, errs)
	return out, len(*errs) == before
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + v + "'"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// asInt reads a JSON integer (json.Number without fraction or exponent,
// or a float64 holding one).
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		if err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), true
		}
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64, int, int64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}
