package egress

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCAPersistsAndSigns: the CA is made once (key 0600), read back the
// same, and signs leaves for the names asked, cached.
func TestCAPersistsAndSigns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "egress")
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Certificate().Equal(ca.Certificate()) {
		t.Fatal("a second load made another CA")
	}
	leaf, err := ca.Leaf("API.test.")
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Leaf.CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Fatal(err)
	}
	if err := leaf.Leaf.VerifyHostname("api.test"); err != nil {
		t.Fatal(err)
	}
	if cached, _ := ca.Leaf("api.test"); cached != leaf {
		t.Fatal("leaf not cached")
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir); err == nil {
		t.Fatal("a broken key file was accepted")
	}
}
