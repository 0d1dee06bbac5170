package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Stored nulls and empty objects read back as empty, non-nil maps.
func TestDecodeNeverNil(t *testing.T) {
	for _, s := range []string{`{}`, `null`} {
		if m, err := decodeStringMap(s); err != nil || m == nil {
			t.Errorf("decodeStringMap(%q) = %v, %v", s, m, err)
		}
		if m, err := decodeDevices(s); err != nil || m == nil {
			t.Errorf("decodeDevices(%q) = %v, %v", s, m, err)
		}
	}
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
