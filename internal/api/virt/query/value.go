package query

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is a JSON value's type as Python sees it after json.loads.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNum
	kStr
	kList
	kObj
	kOther // a Go value JSON cannot hold: never equal, never ordered
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "list", "object", "value"}[k]
}

// num is a JSON number: exact when it is an integer that fits int64 (as
// Python's int), else a float.
type num struct {
	i     int64
	f     float64
	isInt bool
}

func (a num) cmp(b num) int {
	if a.isInt && b.isInt {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	x, y := a.float(), b.float()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func (a num) float() float64 {
	if a.isInt {
		return float64(a.i)
	}
	return a.f
}

func numOfFloat(f float64) num {
	if f == math.Trunc(f) && math.Abs(f) < 1<<62 {
		return num{i: int64(f), f: f, isInt: true}
	}
	return num{f: f}
}

func numOfNumber(n json.Number) (num, bool) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return num{i: i, f: float64(i), isInt: true}, true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return num{}, false
	}
	return numOfFloat(f), true
}

// kindOf classifies an entry's value: what encoding/json decodes, plus the
// Go types an edge building entries by hand is likely to use.
func kindOf(v any) kind {
	switch v.(type) {
	case nil:
		return kNull
	case bool:
		return kBool
	case string:
		return kStr
	case float64, json.Number, int, int64, int32, uint, uint64, uint32, float32:
		return kNum
	case []any, []string, []map[string]any:
		return kList
	case map[string]any, map[string]string:
		return kObj
	}
	return kOther
}

// numOf reads a number or a boolean (Python's bool is an int) as a num.
func numOf(v any) (num, bool) {
	switch x := v.(type) {
	case float64:
		return numOfFloat(x), true
	case json.Number:
		return numOfNumber(x)
	case int:
		return num{i: int64(x), f: float64(x), isInt: true}, true
	case int64:
		return num{i: x, f: float64(x), isInt: true}, true
	case int32:
		return num{i: int64(x), f: float64(x), isInt: true}, true
	case uint:
		return numOfFloat(float64(x)), true
	case uint32:
		return num{i: int64(x), f: float64(x), isInt: true}, true
	case uint64:
		if x <= math.MaxInt64 {
			return num{i: int64(x), f: float64(x), isInt: true}, true
		}
		return num{f: float64(x)}, true
	case float32:
		return numOfFloat(float64(x)), true
	case bool:
		if x {
			return num{i: 1, f: 1, isInt: true}, true
		}
		return num{isInt: true}, true
	}
	return num{}, false
}

// list access without converting typed slices.
func listLen(v any) int {
	switch x := v.(type) {
	case []any:
		return len(x)
	case []string:
		return len(x)
	case []map[string]any:
		return len(x)
	}
	return 0
}

func listAt(v any, i int) any {
	switch x := v.(type) {
	case []any:
		return x[i]
	case []string:
		return x[i]
	case []map[string]any:
		return x[i]
	}
	return nil
}

// objGet looks a key up in an object value.
func objGet(v any, k string) (any, bool, bool) {
	switch x := v.(type) {
	case map[string]any:
		r, ok := x[k]
		return r, ok, true
	case map[string]string:
		r, ok := x[k]
		return r, ok, true
	}
	return nil, false, false
}

func objLen(v any) int {
	switch x := v.(type) {
	case map[string]any:
		return len(x)
	case map[string]string:
		return len(x)
	}
	return 0
}

func objRange(v any, f func(k string, v any) bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if !f(k, e) {
				return
			}
		}
	case map[string]string:
		for k, e := range x {
			if !f(k, e) {
				return
			}
		}
	}
}

// equal is Python's == over JSON values: numbers and booleans compare as
// numbers (1 == 1.0 == True), lists and objects structurally, other mixes
// are unequal.
func equal(a, b any) bool {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case (ka == kNum || ka == kBool) && (kb == kNum || kb == kBool):
		x, _ := numOf(a)
		y, _ := numOf(b)
		return x.cmp(y) == 0
	case ka != kb:
		return false
	}
	switch ka {
	case kNull:
		return true
	case kStr:
		return a.(string) == b.(string)
	case kList:
		n := listLen(a)
		if n != listLen(b) {
			return false
		}
		for i := 0; i < n; i++ {
			if !equal(listAt(a, i), listAt(b, i)) {
				return false
			}
		}
		return true
	case kObj:
		if objLen(a) != objLen(b) {
			return false
		}
		same := true
		objRange(a, func(k string, va any) bool {
			vb, ok, _ := objGet(b, k)
			same = ok && equal(va, vb)
			return same
		})
		return same
	}
	return false
}

// compare is Python's ordering over JSON values: numbers (and booleans)
// numerically, strings by code point, lists lexicographically. ok is false
// where Python raises TypeError (null, objects, mixed types).
func compare(a, b any) (c int, ok bool) {
	ka, kb := kindOf(a), kindOf(b)
	switch {
	case (ka == kNum || ka == kBool) && (kb == kNum || kb == kBool):
		x, _ := numOf(a)
		y, _ := numOf(b)
		return x.cmp(y), true
	case ka != kb:
		return 0, false
	}
	switch ka {
	case kStr:
		// Byte order of UTF-8 is code point order, as Python's str.
		return strings.Compare(a.(string), b.(string)), true
	case kList:
		na, nb := listLen(a), listLen(b)
		for i := 0; i < na && i < nb; i++ {
			x, y := listAt(a, i), listAt(b, i)
			if equal(x, y) {
				continue
			}
			return compare(x, y)
		}
		switch {
		case na < nb:
			return -1, true
		case na > nb:
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// contains is Python's "y in x" for x a list or string or object. ok is
// false where Python raises TypeError.
func contains(x, y any) (bool, bool) {
	switch kindOf(x) {
	case kList:
		n := listLen(x)
		for i := 0; i < n; i++ {
			if equal(listAt(x, i), y) {
				return true, true
			}
		}
		return false, true
	case kStr:
		s, ok := y.(string)
		if !ok {
			return false, false // 'in <string>' requires string as left operand
		}
		return strings.Contains(x.(string), s), true
	case kObj:
		switch kindOf(y) {
		case kList, kObj, kOther:
			return false, false // unhashable
		case kStr:
			_, found, _ := objGet(x, y.(string))
			return found, true
		}
		return false, true // keys are strings: no number, bool or null is one
	}
	return false, false // not iterable
}

// fold is Python's str.casefold for what it changes in practice: ASCII
// fast, other scripts by lowering the upper case (so final sigma and
// friends meet). Foldings that change length (ß -> ss) are not made.
func fold(s string) string {
	ascii := true
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if ascii {
		if !upper {
			return s
		}
		return strings.ToLower(s)
	}
	return strings.ToLower(strings.ToUpper(s))
}

// foldValue folds a string or a list of strings; null stays null. ok is
// false for anything else (the middleware's casefold raises ValueError).
func foldValue(v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case string:
		return fold(x), true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = fold(s)
		}
		return out, true
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = fold(s)
		}
		return out, true
	}
	return nil, false
}
