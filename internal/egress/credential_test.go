package egress

import (
	"errors"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestParseCredential: every field is checked, and the message names it.
func TestParseCredential(t *testing.T) {
	const good = `{"source":{"env":"REAL_KEY"},"inject":[{"hosts":["api.example.com","*.example.com"],"as":{"header":"Authorization","format":"Bearer ${value}"}}]}`
	cases := []struct {
		name, cred, raw, wantErr string
	}{
		{"good", "OPENAI_API_KEY", good, ""},
		{"no hosts: every host", "K", `{"source":{"env":"R"},"inject":[{"as":{"header":"X-Key","format":"${value}"}}]}`, ""},
		{"bad variable name", "1KEY", good, "credentials.1KEY: name"},
		{"variable name with a dash", "A-B", good, "name"},
		{"not JSON", "K", `{`, "not a credential"},
		{"unknown field", "K", `{"source":{"env":"R"},"inject":[],"extra":1}`, "not a credential"},
		{"trailing data", "K", good + `{}`, "trailing data"},
		{"source.env missing", "K", `{"source":{},"inject":[{"as":{"header":"A","format":"${value}"}}]}`, "source.env is required"},
		{"source.env not a name", "K", `{"source":{"env":"a b"},"inject":[{"as":{"header":"A","format":"${value}"}}]}`, "source.env"},
		{"inject missing", "K", `{"source":{"env":"R"}}`, "inject: at least one rule"},
		{"inject empty", "K", `{"source":{"env":"R"},"inject":[]}`, "inject: at least one rule"},
		{"header empty", "K", `{"source":{"env":"R"},"inject":[{"as":{"header":"","format":"${value}"}}]}`, "inject[0].as.header"},
		{"header with a space", "K", `{"source":{"env":"R"},"inject":[{"as":{"header":"X Key","format":"${value}"}}]}`, "inject[0].as.header"},
		{"header with a colon", "K", `{"source":{"env":"R"},"inject":[{"as":{"header":"X:","format":"${value}"}}]}`, "as.header"},
		{"format without ${value}", "K", `{"source":{"env":"R"},"inject":[{"as":{"header":"A","format":"Bearer $value"}}]}`, "inject[0].as.format: must contain"},
		{"format with CRLF", "K", `{"source":{"env":"R"},"inject":[{"as":{"header":"A","format":"${value}\r\nX: y"}}]}`, "no CR, LF"},
		{"host an IP", "K", `{"source":{"env":"R"},"inject":[{"hosts":["10.0.0.1"],"as":{"header":"A","format":"${value}"}}]}`, "inject[0].hosts[0]"},
		{"host with a port", "K", `{"source":{"env":"R"},"inject":[{"hosts":["a.com:443"],"as":{"header":"A","format":"${value}"}}]}`, "hosts[0]"},
		{"wildcard inside", "K", `{"source":{"env":"R"},"inject":[{"hosts":["a.*.com"],"as":{"header":"A","format":"${value}"}}]}`, "wildcard"},
		{"bare wildcard", "K", `{"source":{"env":"R"},"inject":[{"hosts":["*"],"as":{"header":"A","format":"${value}"}}]}`, "wildcard"},
		{"empty label", "K", `{"source":{"env":"R"},"inject":[{"hosts":["a..com"],"as":{"header":"A","format":"${value}"}}]}`, "not a hostname"},
		{"empty host", "K", `{"source":{"env":"R"},"inject":[{"hosts":[""],"as":{"header":"A","format":"${value}"}}]}`, "not a hostname"},
		{"second rule bad", "K", `{"source":{"env":"R"},"inject":[{"as":{"header":"A","format":"${value}"}},{"as":{"header":"B","format":"x"}}]}`, "inject[1].as.format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCredential(tc.cred, tc.raw)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v is not an invalid argument", err)
			}
		})
	}
}

func TestMatchHost(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "API.Example.com.", true},
		{"api.example.com", "x.api.example.com", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
		{"*.example.com", ".example.com", false},
	}
	for _, tc := range cases {
		if got := MatchHost(tc.pattern, tc.host); got != tc.want {
			t.Errorf("MatchHost(%q, %q) = %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}

func TestBuildPolicy(t *testing.T) {
	creds := map[string]Credential{
		"A": {Source: Source{Env: "REAL_A"}, Inject: []Injection{{Hosts: []string{"a.test"}, As: Header{Header: "Authorization", Format: "Bearer ${value}"}}}},
		"B": {Source: Source{Env: "REAL_B"}, Inject: []Injection{{As: Header{Header: "X-B", Format: "${value}"}}}},
	}
	p := BuildPolicy("p/i", creds, map[string]string{"REAL_A": "sa"})
	if len(p.Rules) != 1 || p.Rules[0].Value != "Bearer sa" {
		t.Fatalf("rules %+v: want only A's, rendered", p.Rules)
	}
	if !p.Names("a.test") || p.Names("b.test") {
		t.Fatalf("Names wrong for %+v", p.Rules)
	}
	p = BuildPolicy("p/i", creds, map[string]string{"REAL_A": "sa", "REAL_B": "sb"})
	if !p.Names("anything.test") || len(p.For("a.test")) != 2 {
		t.Fatalf("a rule without hosts must apply everywhere: %+v", p.Rules)
	}
}

func TestPlaceholder(t *testing.T) {
	a, b := NewPlaceholder(), NewPlaceholder()
	if a == b || !strings.HasPrefix(a, "hgr-cred-") || len(a) != len("hgr-cred-")+32 {
		t.Fatalf("placeholders %q %q", a, b)
	}
}
