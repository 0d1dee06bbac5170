package client

import (
	"bytes"
	"encoding/json"

	"github.com/hangar-dev/hangar/api"
)

// decodeSyncRaw is decodeSync for a *json.RawMessage target: it checks
// that data is valid JSON in one pass and then finds the envelope's fields
// by a scanner that trusts that, where json.Unmarshal scans the whole body
// twice (validation, then decoding) and copies the metadata out. The
// metadata is a slice of data. ok is false, and target untouched, for
// anything but a plain sync envelope (an error, an operation, keys that
// are escaped or differ from LXD's only in case): decodeSync's general
// path takes those.
func decodeSyncRaw(data []byte, target *json.RawMessage) (*api.Response, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	var r api.Response
	var meta []byte
	fields := 0
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] != '}' {
		keyEnd := skipValue(data, i)
		key := data[i:keyEnd]
		i = skipSpace(data, keyEnd)
		i = skipSpace(data, i+1) // past ':'
		end := skipValue(data, i)
		val := data[i:end]
		switch string(key) {
		case `"type"`:
			fields |= 1
			if json.Unmarshal(val, &r.Type) != nil {
				return nil, false
			}
		case `"status"`:
			if json.Unmarshal(val, &r.Status) != nil {
				return nil, false
			}
		case `"status_code"`:
			if json.Unmarshal(val, &r.StatusCode) != nil {
				return nil, false
			}
		case `"metadata"`:
			fields |= 2
			meta = val
		default:
			// encoding/json matches keys without regard to case and
			// after unescaping: leave such bodies to it.
			if bytes.IndexByte(key, '\\') >= 0 || isEnvelopeKeyFold(key) {
				return nil, false
			}
		}
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if fields&1 == 0 || r.Type != api.SyncResponse {
		return nil, false
	}
	// null leaves the target alone, as decodeMetadata does.
	if fields&2 != 0 && string(meta) != "null" {
		*target = meta
	}
	return &r, true
}

func isEnvelopeKeyFold(key []byte) bool {
	for _, k := range []string{`"type"`, `"status"`, `"status_code"`, `"metadata"`} {
		if bytes.EqualFold(key, []byte(k)) {
			return true
		}
	}
	return false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at data[i]; data is
// valid JSON.
func skipValue(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of the enclosing object: a scalar ends here
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
