package cli

import (
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

func TestParseRegistryRef(t *testing.T) {
	for _, tc := range []struct {
		in, server, name string
		ok               bool
	}{
		{"alpine", "", "", false},
		{"ubuntu/22.04", "", "", false},
		{"docker.io/library/alpine:3.20", "docker.io", "library/alpine:3.20", true},
		{"127.0.0.1:5000/test/app:1", "127.0.0.1:5000", "test/app:1", true},
		{"localhost/app", "localhost", "app", true},
		{"oci:alpine:3.20", "docker.io", "alpine:3.20", true},
		{"oci:ghcr.io/org/app@sha256:abc", "ghcr.io", "org/app@sha256:abc", true},
	} {
		server, name, ok := parseRegistryRef(tc.in)
		if server != tc.server || name != tc.name || ok != tc.ok {
			t.Errorf("parseRegistryRef(%q) = %q %q %v, want %q %q %v", tc.in, server, name, ok, tc.server, tc.name, tc.ok)
		}
	}
}

func TestProgressPrinterPlain(t *testing.T) {
	var buf strings.Builder
	p := &progressPrinter{w: &buf, what: "Pulling x", last: -1}
	for _, done := range []float64{0, 10, 30, 60, 100} {
		p.update(opWithProgress("download", done, 100))
	}
	p.update(opWithProgress("unpack", 100, 100))
	want := "Pulling x: download [                        ]   0% (0B/100B)\n" +
		"Pulling x: download [=======                 ]  30% (30B/100B)\n" +
		"Pulling x: download [==============          ]  60% (60B/100B)\n" +
		"Pulling x: download [========================] 100% (100B/100B)\n" +
		"Pulling x: unpack   [========================] 100% (100B/100B)\n"
	if buf.String() != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func opWithProgress(stage string, done, total float64) api.Operation {
	return api.Operation{Metadata: map[string]any{api.ProgressStage: stage, api.ProgressBytes: done, api.ProgressTotal: total}}
}
