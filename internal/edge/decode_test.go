package edge

import (
	"errors"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestDecodeJSON(t *testing.T) {
	type req struct {
		Name string `json:"name"`
		CPUs int    `json:"cpus"`
	}
	for _, tc := range []struct {
		name, body string
		empty      bool
		want       string // "" = no error, else a part of the message
	}{
		{"ok", `{"name":"a","cpus":2}`, false, ""},
		{"empty allowed", ``, true, ""},
		{"empty refused", ``, false, "a JSON object is required"},
		{"unknown field", `{"nmae":"a"}`, false, "nmae: unknown field"},
		{"wrong type", `{"cpus":"2"}`, false, "cpus: want int"},
		{"two values", `{"name":"a"}{}`, false, "found more after it"},
		{"syntax", `{"name":`, false, "truncated JSON"},
		{"bad byte", `{"name" x}`, false, "invalid JSON at byte"},
		{"over the limit", `{"name":"` + strings.Repeat("a", 100) + `"}`, false, "truncated JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r req
			err := DecodeJSON(strings.NewReader(tc.body), &r, 64, tc.empty)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want an invalid argument with %q", err, tc.want)
			}
		})
	}
}
