package serverconfig

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHostNICs(t *testing.T) {
	tests := []struct {
		in   string
		want []HostNIC
		err  string
	}{
		{"", nil, ""},
		{"lan=eth0", []HostNIC{{"lan", "eth0"}}, ""},
		{" lan=eth0 , 2=br-x ,", []HostNIC{{"lan", "eth0"}, {"2", "br-x"}}, ""},
		{"lan", nil, "NICID=INTERFACE"},
		{"=eth0", nil, "NICID"},
		{"lan=", nil, "not a valid interface"},
		{"lan=averyveryverylongname", nil, "not a valid interface"},
		{"lan=eth0,lan=eth1", nil, "twice"},
		{"a=eth0,b=eth0", nil, "two NICIDs"},
		{"a b=eth0", nil, "NICID"},
	}
	for _, tt := range tests {
		got, err := ParseHostNICs(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
}
