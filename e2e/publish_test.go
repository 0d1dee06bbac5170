package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublish: a running container published (frozen for the copy) and a
// stopped one published by the real lxc are images whose fingerprint is
// their content's hash, that launch with the published files; a missing
// instance or a taken alias is refused and leaves no image.
func TestPublish(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "c1")
	d.must("exec", "c1", "--", "sh", "-c", "echo published > /root/pub && chown 5:6 /root/pub")
	d.must("publish", "c1", "--alias", "pub1", "--compression", "zstd", "description=from c1")
	if st := d.instance("c1").Status; st != "Running" {
		t.Fatalf("c1 after publish: %s, want Running (frozen only while copied)", st)
	}
	d.must("launch", "pub1", "c2")
	if out := d.must("exec", "c2", "--", "sh", "-c", "cat /root/pub; stat -c %u:%g /root/pub"); out != "published\n5:6\n" {
		t.Errorf("launched from the published image: %q", out)
	}
	fp := d.fingerprint("pub1")
	exported := filepath.Join(t.TempDir(), "export")
	d.must("image", "export", "pub1", exported)
	ents, _ := os.ReadDir(filepath.Dir(exported))
	if len(ents) != 1 {
		t.Fatalf("image export wrote %v", ents)
	}
	f, err := os.Open(filepath.Join(filepath.Dir(exported), ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if sum := hex.EncodeToString(h.Sum(nil)); sum != fp {
		t.Errorf("fingerprint %s, content hash %s", fp, sum)
	}

	d.mustLXC("stop", "c1", "--force")
	d.mustLXC("publish", "c1", "--alias", "pub2")
	d.mustLXC("launch", "pub2", "c3")
	if out := d.mustLXC("exec", "c3", "--", "cat", "/root/pub"); out != "published\n" {
		t.Errorf("lxc publish then launch: %q", out)
	}

	before := d.must("image", "list", "--format", "csv")
	d.mustFail([]string{"publish", "nope", "--alias", "x1"}, "nope")
	d.mustFail([]string{"publish", "c1", "--alias", "pub1"}, "pub1")
	d.mustFail([]string{"publish", "c1", "--compression", "rar"}, "rar")
	if after := d.must("image", "list", "--format", "csv"); after != before {
		t.Errorf("refused publishes changed the images:\n%s\nthen\n%s", before, after)
	}
	if !strings.Contains(before, "pub2") {
		t.Errorf("image list lacks pub2:\n%s", before)
	}
}
