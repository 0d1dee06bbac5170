package qemu

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

type cpioEntry struct {
	name string
	mode uint32
	data string
}

// readCPIO parses newc archives (concatenated ones too), as the kernel does.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	for len(b) > 0 {
		if b[0] == 0 { // padding between archives
			b = b[1:]
			continue
		}
		if len(b) < 110 || string(b[:6]) != "070701" {
			t.Fatalf("bad header at %q", b[:min(len(b), 16)])
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		off := 110
		name := string(b[off : off+int(namesize)-1])
		off = (off + int(namesize) + 3) &^ 3
		data := string(b[off : off+int(size)])
		off = (off + int(size) + 3) &^ 3
		b = b[off:]
		if name == "TRAILER!!!" {
			continue
		}
		out = append(out, cpioEntry{name, mode, data})
	}
	return out
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.Dir("/hangar", 0o755)
	w.File("init", 0o755, []byte("#!agent"))
	w.File("/hangar/a", 0o644, []byte("12345")) // odd length: padded
	w.Symlink("link", "init")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Fatalf("archive length %d is not a multiple of 4", buf.Len())
	}
	conf, err := configInitramfs(vmagentConfigForTest())
	if err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, append(buf.Bytes(), conf...))
	want := []cpioEntry{
		{"hangar", cpioModeDir | 0o755, ""},
		{"init", cpioModeFile | 0o755, "#!agent"},
		{"hangar/a", cpioModeFile | 0o644, "12345"},
		{"link", cpioModeLink | 0o777, "init"},
		{"hangar", cpioModeDir | 0o755, ""},
	}
	if !reflect.DeepEqual(got[:5], want) {
		t.Fatalf("entries:\n got %+v\nwant %+v", got[:5], want)
	}
	if len(got) != 6 || got[5].name != "hangar/config.json" {
		t.Fatalf("config archive: %+v", got[5:])
	}
}

func TestModuleOrder(t *testing.T) {
	dir := t.TempDir()
	dep := "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n" +
		"kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\n" +
		"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n" +
		"kernel/drivers/virtio/virtio.ko:\nkernel/drivers/virtio/virtio_ring.ko:\n" +
		"kernel/crypto/crc32c_generic.ko.xz:\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/char/virtio_console.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := moduleOrder(dir, []string{"virtio_blk", "virtio_console", "crc32c_generic", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/block/virtio_blk.ko",
		"kernel/crypto/crc32c_generic.ko.xz",
		"kernel/lib/crc16.ko", "kernel/fs/mbcache.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/fs/ext4/ext4.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order:\n got %v\nwant %v", got, want)
	}
	if _, err := moduleOrder(dir, []string{"nosuch"}); err == nil {
		t.Fatal("a missing module was not reported")
	}
}

func TestVersionLess(t *testing.T) {
	if !versionLess("/boot/vmlinuz-6.1.0-9-amd64", "/boot/vmlinuz-6.1.0-56-amd64") {
		t.Fatal("6.1.0-9 sorted after 6.1.0-56")
	}
	if versionLess("/boot/vmlinuz-6.10.1", "/boot/vmlinuz-6.9.12") {
		t.Fatal("6.10 sorted before 6.9")
	}
}
