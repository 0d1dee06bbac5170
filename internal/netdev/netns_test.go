package netdev

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCreateNetNS: a namespace with its loopback up, kept as it is by a
// second create, made on a file a crashed create left, and gone (twice
// without error) after delete.
func TestCreateNetNS(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.dir, "c1")
	for range 2 {
		if err := CreateNetNS(p); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	// The second create did not stack a second namespace on the first:
	// one delete leaves no namespace mounted there.
	ifs, err := InterfacesInNetNS(p)
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := ifs["lo"]
	if !ok || !lo.Up || len(ifs) != 1 {
		t.Fatalf("interfaces %+v, want lo alone and up", ifs)
	}
	if !hasAddr(lo, "127.0.0.1/8") {
		t.Errorf("lo addresses %v, want 127.0.0.1/8", lo.Addresses)
	}
	for range 2 {
		if err := DeleteNetNS(p); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after delete: %v", err)
	}

	// A file left by a create killed before it mounted.
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := CreateNetNS(p); err != nil {
		t.Fatalf("create on a left file: %v", err)
	}
	if _, err := InterfacesInNetNS(p); err != nil {
		t.Fatalf("not a namespace: %v", err)
	}
	if err := DeleteNetNS(p); err != nil {
		t.Fatal(err)
	}
}

func hasAddr(i Interface, p string) bool {
	for _, a := range i.Addresses {
		if a.Prefix.String() == p {
			return true
		}
	}
	return false
}
