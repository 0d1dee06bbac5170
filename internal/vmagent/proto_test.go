package vmagent

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	frames := []Frame{
		{MsgHello, 0, nil},
		{MsgStdout, 7, []byte("hello")},
		{MsgData, 1 << 31, bytes.Repeat([]byte{0xAB}, DataChunk)},
	}
	for _, f := range frames {
		if err := w.Write(f.Type, f.Channel, f.Payload); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf)
	for _, want := range frames {
		got, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want.Type || got.Channel != want.Channel || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("got %d/%d/%d bytes, want %d/%d/%d", got.Type, got.Channel, len(got.Payload), want.Type, want.Channel, len(want.Payload))
		}
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if err := w.Write(MsgData, 1, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
}

// A daemon killed mid-frame leaves a partial frame in the port: the next
// reader must skip it and find the following frame.
func TestReaderResyncs(t *testing.T) {
	var good bytes.Buffer
	if err := NewWriter(&good).Write(MsgReady, 0, []byte(`{"version":"1"}`)); err != nil {
		t.Fatal(err)
	}
	var partial bytes.Buffer
	if err := NewWriter(&partial).Write(MsgStdout, 3, []byte("cut short")); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"garbage":          append([]byte("junk\x00HGA"), good.Bytes()...),
		"truncated header": append(append([]byte{}, partial.Bytes()[:10]...), good.Bytes()...),
		"corrupt crc":      append(corrupt(partial.Bytes(), 14), good.Bytes()...),
	}
	for name, stream := range tests {
		t.Run(name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(stream))
			f, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != MsgReady || string(f.Payload) != `{"version":"1"}` {
				t.Fatalf("got frame %d %q", f.Type, f.Payload)
			}
			if r.Skipped == 0 {
				t.Fatal("nothing skipped")
			}
		})
	}
}

func corrupt(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0xff
	return c
}

// TestConfigNICs: the daemon's NICs reach the agent as they were, and a
// NIC without gateways has none (not the zero address).
func TestConfigNICs(t *testing.T) {
	in := Config{NICs: []NIC{
		{Name: "eth0", Hwaddr: "00:16:3e:00:00:01", MTU: 1400,
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
			Gateway4:  netip.MustParseAddr("10.0.0.1"), Gateway6: netip.MustParseAddr("fe80::1"),
			Nameservers: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, SearchDomain: "hangar"},
		{Name: "eth1", Hwaddr: "00:16:3e:00:00:02"},
	}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"gateway4":""`)) {
		t.Errorf("an absent gateway is sent: %s", b)
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in.NICs, out.NICs) {
		t.Fatalf("NICs changed on the way:\n%+v\n%+v", in.NICs, out.NICs)
	}
	if out.NICs[1].Gateway4.IsValid() || out.NICs[1].Gateway6.IsValid() {
		t.Fatalf("eth1 got gateways: %+v", out.NICs[1])
	}
}
