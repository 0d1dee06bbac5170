package proxy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in   string
		want Address
		out  string // String of the result, when it differs from in
	}{
		{in: "tcp:0.0.0.0:8080", want: Address{"tcp", netip.MustParseAddr("0.0.0.0"), []uint16{8080}}},
		{in: "udp:127.0.0.1:53", want: Address{"udp", netip.MustParseAddr("127.0.0.1"), []uint16{53}}},
		{in: "tcp:[::1]:80", want: Address{"tcp", netip.MustParseAddr("::1"), []uint16{80}}},
		{in: "tcp:[::]:80", want: Address{"tcp", netip.MustParseAddr("::"), []uint16{80}}},
		{in: "tcp::80", want: Address{"tcp", netip.Addr{}, []uint16{80}}},
		{in: "tcp:0.0.0.0:8080-8082", want: Address{"tcp", netip.MustParseAddr("0.0.0.0"), []uint16{8080, 8081, 8082}}},
		{in: "tcp:10.0.0.1:80,443,8000-8002", want: Address{"tcp", netip.MustParseAddr("10.0.0.1"), []uint16{80, 443, 8000, 8001, 8002}}},
		{in: "tcp:10.0.0.1:81,80", want: Address{"tcp", netip.MustParseAddr("10.0.0.1"), []uint16{81, 80}}},
		{in: "tcp:10.0.0.1:80,81,82", want: Address{"tcp", netip.MustParseAddr("10.0.0.1"), []uint16{80, 81, 82}}, out: "tcp:10.0.0.1:80-82"},
		{in: "udp:1.2.3.4:65535", want: Address{"udp", netip.MustParseAddr("1.2.3.4"), []uint16{65535}}},
		{in: "tcp:1.2.3.4:7-7", want: Address{"tcp", netip.MustParseAddr("1.2.3.4"), []uint16{7}}, out: "tcp:1.2.3.4:7"},
	}
	for _, tt := range tests {
		got, err := ParseAddress(tt.in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("ParseAddress(%q) (-want +got):\n%s", tt.in, diff)
		}
		out := tt.out
		if out == "" {
			out = tt.in
		}
		if got.String() != out {
			t.Errorf("ParseAddress(%q).String() = %q, want %q", tt.in, got.String(), out)
		}
	}
}

func TestParseAddressBad(t *testing.T) {
	tests := []struct {
		in   string
		kind error
		msg  string // a part the message must hold
	}{
		{"", errdefs.ErrInvalidArgument, "empty"},
		{"8080", errdefs.ErrInvalidArgument, "no protocol"},
		{"sctp:1.2.3.4:80", errdefs.ErrInvalidArgument, `unknown protocol "sctp"`},
		{"TCP:1.2.3.4:80", errdefs.ErrInvalidArgument, `unknown protocol "TCP"`},
		{"unix:/run/x.sock", errdefs.ErrNotImplemented, "unix sockets are not supported"},
		{"unix:@abstract", errdefs.ErrNotImplemented, "unix sockets are not supported"},
		{"tcp:1.2.3.4", errdefs.ErrInvalidArgument, "want ADDR:PORT"},
		{"tcp:::1:80", errdefs.ErrInvalidArgument, "in brackets"},
		{"tcp:1.2.3:80", errdefs.ErrInvalidArgument, `"1.2.3" is not an IP address`},
		{"tcp:example.com:80", errdefs.ErrInvalidArgument, `"example.com" is not an IP address`},
		{"tcp:[fe80::1%eth0]:80", errdefs.ErrInvalidArgument, "zones"},
		{"tcp:1.2.3.4:", errdefs.ErrInvalidArgument, "no port"},
		{"tcp:1.2.3.4:0", errdefs.ErrInvalidArgument, `port "0" is not a number from 1 to 65535`},
		{"tcp:1.2.3.4:65536", errdefs.ErrInvalidArgument, `port "65536"`},
		{"tcp:1.2.3.4:http", errdefs.ErrInvalidArgument, `port "http"`},
		{"tcp:1.2.3.4:-80", errdefs.ErrInvalidArgument, `port ""`},
		{"tcp:1.2.3.4:80-", errdefs.ErrInvalidArgument, `port ""`},
		{"tcp:1.2.3.4:80,,81", errdefs.ErrInvalidArgument, `port ""`},
		{"tcp:1.2.3.4: 80", errdefs.ErrInvalidArgument, `port " 80"`},
		{"tcp:1.2.3.4:82-80", errdefs.ErrInvalidArgument, `range "82-80" ends before it starts`},
		{"tcp:1.2.3.4:80,79-81", errdefs.ErrInvalidArgument, "port 80 is given twice"},
		{"tcp:1.2.3.4:1-65535", errdefs.ErrInvalidArgument, "more than 1024 ports"},
	}
	for _, tt := range tests {
		_, err := ParseAddress(tt.in)
		if err == nil {
			t.Errorf("ParseAddress(%q) succeeded", tt.in)
			continue
		}
		if !errors.Is(err, tt.kind) {
			t.Errorf("ParseAddress(%q): %v, not of kind %v", tt.in, err, tt.kind)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseAddress(%q): %q does not say %q", tt.in, err, tt.msg)
		}
		if tt.in != "" && !strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParseAddress(%q): %q does not name the value", tt.in, err)
		}
	}
}

func TestParsePair(t *testing.T) {
	tests := []struct {
		listen, connect string
		msg             string // "" for a good pair, else a part the error holds
	}{
		{"tcp:0.0.0.0:8080", "tcp:127.0.0.1:80", ""},
		{"udp:[::]:53", "udp:127.0.0.1:53", ""},
		{"tcp:0.0.0.0:8080-8082", "tcp:127.0.0.1:80", ""},
		{"tcp:0.0.0.0:8080-8082", "tcp:127.0.0.1:80-82", ""},
		{"tcp:0.0.0.0:8080,9000", "tcp:127.0.0.1:80,90", ""},
		{"tcp:0.0.0.0:8080", "tcp:127.0.0.1:80-82", "connect has 3 ports but listen has 1"},
		{"tcp:0.0.0.0:8080-8082", "tcp:127.0.0.1:80-81", "connect has 2 ports but listen has 3"},
		{"tcp:0.0.0.0:8080", "udp:127.0.0.1:80", "listen is tcp but connect is udp"},
		{"tcp:0.0.0.0:x", "tcp:127.0.0.1:80", `listen: proxy address "tcp:0.0.0.0:x"`},
		{"tcp:0.0.0.0:80", "unix:/x", `connect: proxy address "unix:/x"`},
	}
	for _, tt := range tests {
		l, c, err := ParsePair(tt.listen, tt.connect)
		switch {
		case tt.msg == "" && err != nil:
			t.Errorf("ParsePair(%q, %q): %v", tt.listen, tt.connect, err)
		case tt.msg == "" && (l.String() != tt.listen || c.String() != tt.connect):
			t.Errorf("ParsePair(%q, %q) = %s, %s", tt.listen, tt.connect, l, c)
		case tt.msg != "" && err == nil:
			t.Errorf("ParsePair(%q, %q) succeeded", tt.listen, tt.connect)
		case tt.msg != "" && !strings.Contains(err.Error(), tt.msg):
			t.Errorf("ParsePair(%q, %q): %q does not say %q", tt.listen, tt.connect, err, tt.msg)
		case tt.msg != "" && !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotImplemented):
			t.Errorf("ParsePair(%q, %q): %v is of no kind", tt.listen, tt.connect, err)
		}
	}
}

// TestValidatePairBuilt: addresses built by hand, not parsed, are checked
// too.
func TestValidatePairBuilt(t *testing.T) {
	ok := Address{"tcp", netip.MustParseAddr("127.0.0.1"), []uint16{80}}
	tests := []struct {
		name            string
		listen, connect Address
		msg             string
	}{
		{"no proto", Address{Ports: []uint16{80}}, ok, `listen: unknown protocol ""`},
		{"no ports", ok, Address{Proto: "tcp"}, "connect: no port"},
	}
	for _, tt := range tests {
		err := ValidatePair(tt.listen, tt.connect)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want an invalid argument saying %q", tt.name, err, tt.msg)
		}
	}
}

func TestTarget(t *testing.T) {
	tests := []struct {
		connect string
		i       int
		want    string
	}{
		{"tcp:10.0.0.1:80", 2, "10.0.0.1:80"},
		{"tcp:10.0.0.1:80-82", 2, "10.0.0.1:82"},
		{"tcp::80", 0, "127.0.0.1:80"},
		{"udp:[::1]:53", 0, "[::1]:53"},
	}
	for _, tt := range tests {
		a, err := ParseAddress(tt.connect)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.target(tt.i).String(); got != tt.want {
			t.Errorf("%s port %d goes to %s, want %s", tt.connect, tt.i, got, tt.want)
		}
	}
}
