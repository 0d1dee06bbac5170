package autostandby

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     map[string]string
		want    Policy
		wantErr string // a substring; "" means no error
	}{
		{name: "none", cfg: map[string]string{"limits.cpu": "1"}, want: Policy{IdleTimeout: DefaultIdleTime}},
		{name: "enabled only", cfg: map[string]string{KeyEnabled: "true"},
			want: Policy{Configured: true, Enabled: true, IdleTimeout: DefaultIdleTime}},
		{name: "disabled with timeout", cfg: map[string]string{KeyEnabled: "false", KeyIdleTimeout: "90s"},
			want: Policy{Configured: true, IdleTimeout: 90 * time.Second, IdleTimeoutSpec: "90s"}},
		{name: "timeout alone configures", cfg: map[string]string{KeyIdleTimeout: "3s"},
			want: Policy{Configured: true, IdleTimeout: 3 * time.Second, IdleTimeoutSpec: "3s"}},
		{name: "full", cfg: map[string]string{KeyEnabled: "yes", KeyIdleTimeout: "1m30s", KeyIgnorePorts: "22, 9100",
			KeyIgnoreCIDRs: "10.1.2.3/8,fd00::/8"},
			want: Policy{Configured: true, Enabled: true, IdleTimeout: 90 * time.Second, IdleTimeoutSpec: "1m30s",
				IgnorePorts: []uint16{22, 9100}, IgnoreCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}}},
		{name: "bad bool", cfg: map[string]string{KeyEnabled: "sure"}, wantErr: KeyEnabled},
		{name: "no unit", cfg: map[string]string{KeyIdleTimeout: "30"}, wantErr: "not a duration"},
		{name: "zero", cfg: map[string]string{KeyIdleTimeout: "0s"}, wantErr: "at least 1s"},
		{name: "negative", cfg: map[string]string{KeyIdleTimeout: "-1m"}, wantErr: "at least 1s"},
		{name: "below minimum", cfg: map[string]string{KeyIdleTimeout: "999ms"}, wantErr: "at least 1s"},
		{name: "too long", cfg: map[string]string{KeyIdleTimeout: "10000h"}, wantErr: "at most"},
		{name: "port zero", cfg: map[string]string{KeyIgnorePorts: "0"}, wantErr: "between 1 and 65535"},
		{name: "port too big", cfg: map[string]string{KeyIgnorePorts: "80,65536"}, wantErr: "65536"},
		{name: "port name", cfg: map[string]string{KeyIgnorePorts: "ssh"}, wantErr: "ssh"},
		{name: "empty port", cfg: map[string]string{KeyIgnorePorts: "80,,443"}, wantErr: `""`},
		{name: "bare address", cfg: map[string]string{KeyIgnoreCIDRs: "10.0.0.1"}, wantErr: "not a CIDR"},
		{name: "bad prefix", cfg: map[string]string{KeyIgnoreCIDRs: "10.0.0.0/33"}, wantErr: "not a CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePolicy(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("ParsePolicy(%v) = %v, want an invalid-argument error with %q", tc.cfg, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy(%v): %v", tc.cfg, err)
			}
			if got.Configured != tc.want.Configured || got.Enabled != tc.want.Enabled || got.IdleTimeout != tc.want.IdleTimeout ||
				got.IdleTimeoutSpec != tc.want.IdleTimeoutSpec || !slices.Equal(got.IgnorePorts, tc.want.IgnorePorts) ||
				!slices.Equal(got.IgnoreCIDRs, tc.want.IgnoreCIDRs) {
				t.Fatalf("ParsePolicy(%v) = %+v, want %+v", tc.cfg, got, tc.want)
			}
		})
	}
}

func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		ok         bool
	}{
		{KeyEnabled, "on", true},
		{KeyEnabled, "2", false},
		{KeyIdleTimeout, "", true}, // unset: the default
		{KeyIdleTimeout, "1s", true},
		{KeyIdleTimeout, "10ms", false},
		{KeyIgnorePorts, "", true},
		{KeyIgnorePorts, "443", true},
		{KeyIgnorePorts, "-1", false},
		{KeyIgnoreCIDRs, "", true},
		{KeyIgnoreCIDRs, "192.168.0.0/16", true},
		{KeyIgnoreCIDRs, "192.168.0.0/16,nope", false},
	} {
		if err := Validators[tc.key](tc.value); (err == nil) != tc.ok {
			t.Errorf("Validators[%q](%q) = %v, want ok=%v", tc.key, tc.value, err, tc.ok)
		}
	}
}
