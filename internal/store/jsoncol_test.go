package store

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fast path must never accept input that encoding/json reads
// differently; where it declines, encoding/json decides.
func FuzzDecodeMaps(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, ``, `{"a":"b"}`, `{"a":"b","c":""}`, `{"a":"b","a":"c"}`,
		`{"k":"<\u003e&"}`, `{"k":"a\"b"}`, `{"k":"\ud800"}`, "{\"k\":\"\xff\"}", "{\"k\":\"\x01\"}",
		`{ "a" : "b" }`, `{"a":1}`, `{"a":"b",}`, `{"a":"b"}x`, `{"a"`,
		`{"root":{"type":"disk","path":"/"},"eth0":{}}`, `{"x":null}`, `{"x":{"a":"b"},"x":{"c":"d"}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := fastJSON{s: s}
		if got, ok := p.stringMap(); ok && p.i == len(s) {
			var want map[string]string
			if err := json.Unmarshal([]byte(s), &want); err != nil {
				t.Fatalf("fast path accepted %q, encoding/json: %v", s, err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("string map %q (-json +fast):\n%s", s, d)
			}
		}
		p = fastJSON{s: s}
		if got, ok := p.devices(); ok && p.i == len(s) {
			var want map[string]map[string]string
			if err := json.Unmarshal([]byte(s), &want); err != nil {
				t.Fatalf("fast path accepted %q, encoding/json: %v", s, err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("devices %q (-json +fast):\n%s", s, d)
			}
		}
		// Whatever path is taken, a map is never nil.
		if m, err := decodeStringMap(s); err == nil && m == nil {
			t.Fatalf("decodeStringMap(%q) = nil", s)
		}
		if m, err := decodeDevices(s); err == nil && m == nil {
			t.Fatalf("decodeDevices(%q) = nil", s)
		}
	})
}

// Values json.Marshal escapes round-trip through the fallback.
func TestDecodeEscapes(t *testing.T) {
	in := map[string]string{"html": "<a & b>", "quote": `say "hi"`, "nl": "a\nb", "ls": "\u2028", "plain": "x"}
	s, err := marshalMap(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeStringMap(s)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}
