package drivers

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestBtrfsSendReceive: a volume's snapshots go from one btrfs pool to
// another as btrfs send streams, the first whole, the next as the
// changes since the first (received only where the first was received),
// read-only or writable, filesystem and block volumes; the trees match.
// A bad stream, a missing parent or a taken name fails with its kind and
// leaves nothing on the receiving pool.
func TestBtrfsSendReceive(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	src := e.makePool("btrfs", "src")
	dst := e.makePool("btrfs", "dst")
	ctx := e.ctx
	if !src.Info().SendReceive {
		t.Fatal("btrfs Info: SendReceive false")
	}

	v := Volume{Type: TypeContainer, Name: "c1", Content: ContentFilesystem}
	if err := src.CreateVolume(ctx, v, 0, false, func(dir string) error {
		if err := writeOddTree(dir); err != nil {
			return err
		}
		return writeZeros(filepath.Join(dir, "rootfs", "big"), 8<<20)
	}); err != nil {
		t.Fatal(err)
	}
	s1 := Volume{Type: TypeContainer, Name: "c1@s1", Content: ContentFilesystem}
	s2 := Volume{Type: TypeContainer, Name: "c1@s2", Content: ContentFilesystem}
	if err := src.SnapshotVolume(ctx, s1, v); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src.Path(v), "rootfs", "etc", "changed"), "after s1")
	if err := os.Remove(filepath.Join(src.Path(v), "rootfs", "data-link2")); err != nil {
		t.Fatal(err)
	}
	if err := src.SnapshotVolume(ctx, s2, v); err != nil {
		t.Fatal(err)
	}

	mustErrIs(t, src.SendVolume(ctx, v, nil, io.Discard), errdefs.ErrInvalidArgument, "send of a writable volume")
	mustErrIs(t, src.SendVolume(ctx, Volume{TypeContainer, "nope", ContentFilesystem}, nil, io.Discard), errdefs.ErrNotFound, "send of a missing volume")
	mustErrIs(t, src.SendVolume(ctx, s2, &v, io.Discard), errdefs.ErrInvalidArgument, "send against a writable parent")

	var full, inc bytes.Buffer
	if err := src.SendVolume(ctx, s1, nil, &full); err != nil {
		t.Fatalf("send s1: %v", err)
	}
	if err := src.SendVolume(ctx, s2, &s1, &inc); err != nil {
		t.Fatalf("send s2 against s1: %v", err)
	}
	if inc.Len() >= full.Len()/4 {
		t.Errorf("incremental stream %d bytes, full %d: the increment is not smaller", inc.Len(), full.Len())
	}
	t.Logf("streams: full %d bytes, incremental %d bytes", full.Len(), inc.Len())

	// Bad streams first, on the empty pool: nothing is left.
	badStreams := []struct {
		what   string
		vol    Volume
		stream []byte
		kind   error
	}{
		{"a truncated stream", s1, full.Bytes()[:full.Len()/2], errdefs.ErrInvalidArgument},
		{"no stream at all", s1, nil, errdefs.ErrInvalidArgument},
		{"garbage", s1, bytes.Repeat([]byte("not a stream "), 100), errdefs.ErrInvalidArgument},
		{"an increment without its parent", s2, inc.Bytes(), errdefs.ErrNotFound},
		{"a filesystem stream as a block volume", Volume{TypeVM, "vm@s1", ContentBlock}, full.Bytes(), errdefs.ErrInvalidArgument},
	}
	for _, b := range badStreams {
		err := dst.ReceiveVolume(ctx, b.vol, bytes.NewReader(b.stream), true)
		mustErrIs(t, err, b.kind, "receive of "+b.what)
		if got := volumesOf(t, dst); len(got) != 0 {
			t.Errorf("receive of %s left volumes %v", b.what, got)
		}
		assertNoLeftovers(t, dst)
	}

	// s1 whole, then s2 as an increment streamed through a pipe, as a
	// copy across pools does it.
	if err := dst.ReceiveVolume(ctx, s1, bytes.NewReader(full.Bytes()), true); err != nil {
		t.Fatalf("receive s1: %v", err)
	}
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		err := src.SendVolume(ctx, s2, &s1, pw)
		pw.CloseWithError(err)
		sent <- err
	}()
	if err := dst.ReceiveVolume(ctx, s2, pr, true); err != nil {
		t.Fatalf("receive s2 against s1: %v", err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("send s2 into the pipe: %v", err)
	}
	for _, s := range []Volume{s1, s2} {
		assertSameTree(t, "received "+s.Name, treeOf(t, src.Path(s)), treeOf(t, dst.Path(s)))
		err := os.WriteFile(filepath.Join(dst.Path(s), "x"), nil, 0o644)
		if !errors.Is(err, unix.EROFS) {
			t.Errorf("write into the received snapshot %s: %v, want EROFS", s.Name, err)
		}
		if u, err := dst.VolumeUsage(ctx, s); err != nil || u.Used < 8<<20 {
			t.Errorf("usage of the received %s: %+v, %v", s.Name, u, err)
		}
	}
	mustErrIs(t, dst.ReceiveVolume(ctx, s1, bytes.NewReader(full.Bytes()), true), errdefs.ErrConflict, "receive onto an existing volume")

	// The instance itself, writable, from the last snapshot's increment.
	if err := dst.ReceiveVolume(ctx, v, bytes.NewReader(inc.Bytes()), false); err != nil {
		t.Fatalf("receive the volume writable: %v", err)
	}
	assertSameTree(t, "received writable volume", treeOf(t, src.Path(s2)), treeOf(t, dst.Path(v)))
	writeFile(t, filepath.Join(dst.Path(v), "rootfs", "written"), "yes")

	// A block volume (a VM's disk), whole.
	vm := Volume{Type: TypeVM, Name: "vm", Content: ContentBlock}
	vmSnap := Volume{Type: TypeVM, Name: "vm@s1", Content: ContentBlock}
	if err := src.CreateVolume(ctx, vm, 16<<20, false, func(dir string) error {
		return writeBlock(filepath.Join(dir, BlockFile), "the disk")
	}); err != nil {
		t.Fatal(err)
	}
	if err := src.SnapshotVolume(ctx, vmSnap, vm); err != nil {
		t.Fatal(err)
	}
	var blk bytes.Buffer
	if err := src.SendVolume(ctx, vmSnap, nil, &blk); err != nil {
		t.Fatal(err)
	}
	if err := dst.ReceiveVolume(ctx, vmSnap, &blk, true); err != nil {
		t.Fatalf("receive a block volume: %v", err)
	}
	assertSameTree(t, "received block volume", treeOf(t, src.Path(vmSnap)), treeOf(t, dst.Path(vmSnap)))

	want := []Volume{s1, s2, v, vmSnap}
	sortVols(want)
	if got := volumesOf(t, dst); !slices.Equal(got, want) {
		t.Errorf("volumes on the receiving pool %v, want %v", got, want)
	}
	assertNoLeftovers(t, dst)

	// The parent gone from the receiving pool: the increment is a 404,
	// and leaves nothing.
	if err := dst.DeleteVolume(ctx, s1); err != nil {
		t.Fatal(err)
	}
	again := Volume{Type: TypeContainer, Name: "c1@again", Content: ContentFilesystem}
	mustErrIs(t, dst.ReceiveVolume(ctx, again, bytes.NewReader(inc.Bytes()), true), errdefs.ErrNotFound, "receive with the parent deleted")
	assertNoLeftovers(t, dst)

	for _, d := range []Driver{src, dst} {
		for _, vol := range volumesOf(t, d) {
			if err := d.DeleteVolume(ctx, vol); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.assertClean()
}

// TestBtrfsReceiveKilled: a receive killed part way leaves its scratch
// subvolume (holding the read-only subvolume btrfs receive made), which
// is no volume, and Sweep removes it.
func TestBtrfsReceiveKilled(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	d := e.makePool("btrfs", "p")
	ctx := e.ctx
	v := Volume{Type: TypeCustom, Name: "v", Content: ContentFilesystem}
	s := Volume{Type: TypeCustom, Name: "v@s", Content: ContentFilesystem}
	if err := d.CreateVolume(ctx, v, 0, false, func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.SnapshotVolume(ctx, s, v); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := d.SendVolume(ctx, s, nil, &stream); err != nil {
		t.Fatal(err)
	}
	scratch := layoutOf(d).tmpPath(Volume{Type: TypeCustom, Name: "got", Content: ContentFilesystem})
	if err := btrfsSubvolCreate(scratch); err != nil {
		t.Fatal(err)
	}
	if err := runBtrfs(ctx, &stream, nil, "receive", scratch); err != nil {
		t.Fatal(err)
	}
	want := []Volume{v, s}
	sortVols(want)
	if got := volumesOf(t, d); !slices.Equal(got, want) {
		t.Errorf("volumes with a killed receive's scratch: %v, want %v", got, want)
	}
	if err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, d)
	for _, vol := range want {
		if err := d.DeleteVolume(ctx, vol); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestDirSendRefused: a dir pool has no stream format: both directions
// are a 501, and Info says so.
func TestDirSendRefused(t *testing.T) {
	e := newEnv(t)
	d := e.makePool("dir", "p")
	if d.Info().SendReceive {
		t.Error("dir Info: SendReceive true")
	}
	v := Volume{Type: TypeCustom, Name: "v", Content: ContentFilesystem}
	s := Volume{Type: TypeCustom, Name: "v@s", Content: ContentFilesystem}
	if err := d.CreateVolume(e.ctx, v, 0, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.SnapshotVolume(e.ctx, s, v); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	mustErrIs(t, d.SendVolume(e.ctx, s, nil, &out), errdefs.ErrNotImplemented, "dir send")
	mustErrIs(t, d.SendVolume(e.ctx, s, &v, &out), errdefs.ErrNotImplemented, "dir incremental send")
	if out.Len() != 0 {
		t.Errorf("a refused send wrote %d bytes", out.Len())
	}
	mustErrIs(t, d.ReceiveVolume(e.ctx, Volume{TypeCustom, "w", ContentFilesystem}, bytes.NewReader(nil), true), errdefs.ErrNotImplemented, "dir receive")
	want := []Volume{v, s}
	sortVols(want)
	if got := volumesOf(t, d); !slices.Equal(got, want) {
		t.Errorf("volumes %v, want %v", got, want)
	}
	for _, vol := range want {
		if err := d.DeleteVolume(e.ctx, vol); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}
