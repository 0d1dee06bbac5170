package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// writeYAMLList prints v, the API objects of a listing, as YAML. It goes
// through v's JSON encoding, which names every field as the API does and
// keeps the struct order, and turns the JSON token stream into YAML block
// style indented by two spaces, as yaml.v3 with SetIndent(2) lays it out.
//
// yaml.v3's encoder keeps every event of a document until the document
// ends, so a listing of 1000 instances took 0.7 s and 168 MB there; this
// takes a few ms. Strings are written plain when YAML reads them back as
// the same string, and double-quoted (JSON escapes are valid YAML ones)
// otherwise, so the output parses back to the same values. It differs
// from yaml.v3's in two ways: a few strings are quoted that yaml.v3 leaves
// plain, and a nil map or slice is null, as in the JSON output, where
// yaml.v3 writes {} or [] (the daemon's answers decode to empty ones).
func writeYAMLList(w io.Writer, v any) error {
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	y := &yamlWriter{in: js.Bytes()}
	y.out.Grow(js.Len() * 3 / 2)
	if err := y.value(0, placeTop); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	_, err := w.Write(y.out.Bytes())
	return err
}

// writeYAMLListJSON prints raw, a JSON array of API objects as a daemon
// sent it, as writeYAMLList prints the same array decoded into its Go
// type and sorted by the field sortKey (a string): it spares decoding
// every object only to encode it again. The items are written in the
// daemon's order, each remembering its sortKey, and reordered as whole
// YAML blocks only if that order is not already sorted. null is an empty
// listing, as the decoded path prints it. raw must be valid JSON (the
// client checks it); it is the same text as the re-encoded value when the
// daemon encodes the same Go type with encoding/json, as hangard does.
func writeYAMLListJSON(w io.Writer, raw []byte, sortKey string) error {
	y := &yamlWriter{in: raw, sortKey: []byte(strconv.Quote(sortKey))}
	switch y.skip() {
	case 0:
		_, err := io.WriteString(w, "[]\n")
		return err
	case 'n':
		if !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return errYAMLInput
		}
		_, err := io.WriteString(w, "[]\n")
		return err
	case '[':
	default:
		return errors.New("encode yaml: the listing is not a JSON array")
	}
	y.pos++
	if y.skip() == ']' {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	y.out.Grow(len(raw) + len(raw)/8)
	type item struct {
		key      string
		from, to int // its YAML in y.out
	}
	var items []item
	for done := false; !done; {
		from := y.out.Len()
		y.out.WriteString("- ")
		y.key = nil
		if err := y.value(0, placeItem); err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		key, err := jsonString(y.key)
		if err != nil {
			return fmt.Errorf("encode yaml: %s: %w", sortKey, err)
		}
		items = append(items, item{key, from, y.out.Len()})
		switch y.skip() {
		case ',':
			y.pos++
		case ']':
			y.pos++
			done = true
		default:
			return fmt.Errorf("encode yaml: %w", errYAMLInput)
		}
	}
	out := y.out.Bytes()
	byKey := func(a, b item) int { return strings.Compare(a.key, b.key) }
	if !slices.IsSortedFunc(items, byKey) {
		slices.SortStableFunc(items, byKey)
		sorted := make([]byte, 0, len(out))
		for _, it := range items {
			sorted = append(sorted, out[it.from:it.to]...)
		}
		out = sorted
	}
	_, err := w.Write(out)
	return err
}

// jsonString is the string a JSON string literal stands for; anything but
// a string (null, or no such field) is "", as decoding into a string field
// leaves it.
func jsonString(lit []byte) (string, error) {
	if len(lit) == 0 || lit[0] != '"' {
		return "", nil
	}
	if bytes.IndexByte(lit, '\\') < 0 && utf8.Valid(lit) {
		return string(lit[1 : len(lit)-1]), nil
	}
	var s string
	err := json.Unmarshal(lit, &s)
	return s, err
}

// yamlWriter turns JSON into YAML. Its input is encoding/json's output or
// JSON the client checked, so it reads it with a scanner that trusts the
// syntax (encoding/json's own Decoder.Token spends most of its time
// building errors it then drops).
type yamlWriter struct {
	in    []byte
	pos   int
	out   bytes.Buffer
	depth int // of the collection being written, 1 for the outermost
	// sortKey, when set, is a quoted key whose value in the objects at
	// depth 1 is kept in key (as a JSON literal).
	sortKey []byte
	key     []byte
	scratch []byte // unescapeSimple's output, reused
}

// Where a value starts: at the top of the document, after "key:", or
// after "- ".
const (
	placeTop = iota
	placeKey
	placeItem
)

var errYAMLInput = errors.New("unexpected end of JSON")

// skip moves past white space and returns the next byte, 0 at the end.
func (y *yamlWriter) skip() byte {
	for y.pos < len(y.in) {
		switch c := y.in[y.pos]; c {
		case ' ', '\n', '\t', '\r':
			y.pos++
		default:
			return c
		}
	}
	return 0
}

// value writes the value at the cursor. indent is the column of the
// enclosing key or dash; collections below it go two columns further.
func (y *yamlWriter) value(indent int, place int) error {
	c := y.skip()
	if c != '{' && c != '[' {
		if place == placeKey {
			y.out.WriteByte(' ')
		}
		if err := y.scalar(); err != nil {
			return err
		}
		y.out.WriteByte('\n')
		return nil
	}
	y.pos++
	end := byte('}')
	if c == '[' {
		end = ']'
	}
	if y.skip() == end {
		y.pos++
		if place == placeKey {
			y.out.WriteByte(' ')
		}
		y.out.WriteByte(c)
		y.out.WriteByte(end)
		y.out.WriteByte('\n')
		return nil
	}
	y.depth++
	defer func() { y.depth-- }()
	// Under a key, a collection starts on the next line, indented. As an
	// item, its first entry shares the dash's line.
	inner := indent
	switch place {
	case placeKey:
		y.out.WriteByte('\n')
		inner = indent + 2
	case placeItem:
		inner = indent + 2
	}
	for i := 0; ; i++ {
		if i > 0 || place != placeItem {
			y.indent(inner)
		}
		if c == '[' {
			y.out.WriteString("- ")
			if err := y.value(inner, placeItem); err != nil {
				return err
			}
		} else {
			if y.skip() != '"' {
				return errors.New("object key is not a string")
			}
			keyStart := y.pos
			if err := y.scalar(); err != nil {
				return err
			}
			isSortKey := y.depth == 1 && y.sortKey != nil && bytes.Equal(y.in[keyStart:y.pos], y.sortKey)
			if y.skip() != ':' {
				return errors.New("missing colon after object key")
			}
			y.pos++
			y.out.WriteByte(':')
			valueStart := y.pos
			if err := y.value(inner, placeKey); err != nil {
				return err
			}
			if isSortKey {
				y.key = bytes.TrimSpace(y.in[valueStart:y.pos])
			}
		}
		switch y.skip() {
		case ',':
			y.pos++
		case end:
			y.pos++
			return nil
		default:
			return errYAMLInput
		}
	}
}

// isScalarEnd reports whether c ends a number, true, false or null.
func isScalarEnd(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\n', '\t', '\r':
		return true
	}
	return false
}

func (y *yamlWriter) indent(n int) {
	for range n {
		y.out.WriteByte(' ')
	}
}

// scalar writes the string, number, boolean or null at the cursor.
func (y *yamlWriter) scalar() error {
	start := y.pos
	if y.pos >= len(y.in) {
		return errYAMLInput
	}
	if y.in[start] != '"' {
		// Numbers, true, false and null read the same in YAML.
		for y.pos < len(y.in) && !isScalarEnd(y.in[y.pos]) {
			y.pos++
		}
		y.out.Write(y.in[start:y.pos])
		return nil
	}
	escaped := false
	for y.pos++; y.pos < len(y.in) && y.in[y.pos] != '"'; y.pos++ {
		if y.in[y.pos] == '\\' {
			escaped = true
			y.pos++
		}
	}
	if y.pos >= len(y.in) {
		return errYAMLInput
	}
	y.pos++
	raw := y.in[start+1 : y.pos-1]
	if escaped {
		// The common escapes (\" and \\ in JSON-in-config values such as
		// volatile.idmap.*) are undone here; the rest go to the decoder.
		var ok bool
		if raw, ok = y.unescapeSimple(raw); !ok {
			var s string
			if err := json.Unmarshal(y.in[start:y.pos], &s); err != nil {
				return fmt.Errorf("decode string: %w", err)
			}
			raw = []byte(s)
		}
	} else if !utf8.Valid(raw) {
		// Only JSON from elsewhere than encoding/json holds invalid
		// UTF-8; the decoder turns it into U+FFFD as the decoded path
		// does.
		var s string
		if err := json.Unmarshal(y.in[start:y.pos], &s); err != nil {
			return fmt.Errorf("decode string: %w", err)
		}
		raw = []byte(s)
	}
	if plainSafe(raw) {
		y.out.Write(raw)
	} else {
		// Go's escapes (\n, \", \\, \t, \xXX, \uXXXX...) are YAML's too;
		// raw is valid UTF-8 here, so \xXX only ever stands for a control
		// character.
		y.quote(raw)
	}
	return nil
}

// unescapeSimple undoes the escapes of a JSON string's content when they
// are all \" or \\ and the rest is printable ASCII; ok is false otherwise.
func (y *yamlWriter) unescapeSimple(raw []byte) (out []byte, ok bool) {
	y.scratch = y.scratch[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' {
			i++
			if i == len(raw) || raw[i] != '"' && raw[i] != '\\' {
				return nil, false
			}
			c = raw[i]
		} else if c < 0x20 || c > 0x7e {
			return nil, false
		}
		y.scratch = append(y.scratch, c)
	}
	return y.scratch, true
}

// quote writes s as strconv.Quote does, without its per-rune work when s
// is printable ASCII.
func (y *yamlWriter) quote(s []byte) {
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			y.out.Write(strconv.AppendQuote(y.out.AvailableBuffer(), string(s)))
			return
		}
	}
	y.out.WriteByte('"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			y.out.WriteByte('\\')
		}
		y.out.WriteByte(c)
	}
	y.out.WriteByte('"')
}

// plainSafe reports whether s can stand unquoted: made of characters that
// mean nothing in YAML's flow or block syntax, starting with a letter, '/'
// or '_', or with a digit when it cannot be read as a number or a date,
// and not one of the words YAML reads as a boolean or null.
func plainSafe[T string | []byte](s T) bool {
	if len(s) == 0 || s[len(s)-1] == ' ' || s[len(s)-1] == ':' {
		return false
	}
	c := s[0]
	digit := c >= '0' && c <= '9'
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/' || c == '_' || digit) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == '/', c == '+', c == '=', c == '@', c == '(', c == ')':
		case c == ' ':
			// " #" would start a comment.
			if i+1 < len(s) && s[i+1] == '#' {
				return false
			}
		case c == ':':
			// ": " would end a key.
			if i+1 < len(s) && s[i+1] == ' ' {
				return false
			}
		default:
			return false
		}
	}
	if digit {
		// Timestamps stay plain, as yaml.v3 writes a time.Time; a string
		// field reads one back as the same text.
		// (time.Parse only for what can be one: "2006-01-02T15:04:05Z"
		// and longer; a list has thousands of numbers to rule out.)
		if len(s) >= 20 && s[4] == '-' && s[7] == '-' {
			if _, err := time.Parse(time.RFC3339Nano, string(s)); err == nil {
				return true
			}
		}
		return !looksNumeric(string(s))
	}
	if len(s) <= 5 {
		switch strings.ToLower(string(s)) {
		case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf":
			return false
		}
	}
	return true
}

// looksNumeric reports whether YAML may read s, which starts with a digit,
// as something other than a string: an integer in any base, a float, a
// date or a time.
func looksNumeric(s string) bool {
	if strings.ContainsAny(s, "_:") {
		return true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseInt(s, 0, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseUint(s, 0, 64); err == nil {
		return true
	}
	// Dates: 2006-01-02 and anything after it.
	return len(s) >= 5 && s[4] == '-' && strings.IndexFunc(s[:4], func(r rune) bool { return r < '0' || r > '9' }) < 0
}
