package store

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// marshalMap encodes a map column; nil is stored as {} so every row holds
// an object.
func marshalMap[M ~map[string]V, V any](m M) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode map: %w", err)
	}
	return string(b), nil
}

// decodeStringMap decodes a config or properties column into a non-nil map:
// callers write into records they read (rec.Config[k] = v).
//
// Decoding these columns was half the cost of ListInstances with
// encoding/json, so the compact, escape-free JSON that json.Marshal writes
// for everyday keys and values is parsed here directly; anything else
// (escapes, whitespace, null, a parse error) goes to encoding/json. The fast
// path accepts only input that encoding/json decodes to the same map, which
// FuzzDecodeMaps checks.
func decodeStringMap(s string) (map[string]string, error) {
	p := fastJSON{s: s}
	if m, ok := p.stringMap(); ok && p.i == len(s) {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode stored map: %w", err)
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// decodeDevices decodes a devices column into a non-nil map, as
// decodeStringMap does.
func decodeDevices(s string) (map[string]map[string]string, error) {
	p := fastJSON{s: s}
	if m, ok := p.devices(); ok && p.i == len(s) {
		return m, nil
	}
	var m map[string]map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode stored devices: %w", err)
	}
	if m == nil {
		m = map[string]map[string]string{}
	}
	return m, nil
}

// fastJSON parses the subset of JSON described at decodeStringMap. Every
// method reports false, rather than guessing, on anything outside it.
type fastJSON struct {
	s string
	i int
}

func (p *fastJSON) consume(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string with no escapes. The result shares s's memory, which
// the caller's row string keeps alive anyway.
func (p *fastJSON) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			// encoding/json replaces invalid UTF-8; leave that to it.
			return v, utf8.ValidString(v)
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// object reads {"k":<value>,...}, calling value for each key.
func (p *fastJSON) object(value func(k string) bool) bool {
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !p.consume(':') || !value(k) {
			return false
		}
		if p.consume('}') {
			return true
		}
		if !p.consume(',') {
			return false
		}
	}
}

func (p *fastJSON) stringMap() (map[string]string, bool) {
	m := map[string]string{}
	ok := p.object(func(k string) bool {
		v, ok := p.str()
		m[k] = v // a repeated key: the last wins, as in encoding/json
		return ok
	})
	return m, ok
}

func (p *fastJSON) devices() (map[string]map[string]string, bool) {
	m := map[string]map[string]string{}
	ok := p.object(func(k string) bool {
		v, ok := p.stringMap()
		m[k] = v
		return ok
	})
	return m, ok
}
