package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// kernelAtLeast reports whether the running kernel's release is at least
// major.minor: the oracle the probes are checked against, since each
// feature arrived in a known release.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(uts.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("kernel release %q", rel)
	}
	maj, _ := strconv.Atoi(parts[0])
	mn, _ := strconv.Atoi(strings.FieldsFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })[0])
	return maj > major || maj == major && mn >= minor
}

func TestProbeKernelFeatures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("file capabilities and open_tree need root")
	}
	got := probeKernelFeatures(t.TempDir())
	tests := []struct {
		key          string
		major, minor int // the release that brought it; 0: always "false" here
	}{
		{featNetnsidGetifaddrs, 4, 20},
		{featSeccompListener, 5, 0},
		{featUnprivFscaps, 4, 14},
		{featIdmappedMounts, 5, 12},
		{featSeccompContinue, 0, 0},
		{featUeventInjection, 4, 18},
	}
	for _, tt := range tests {
		want := "false"
		if tt.major > 0 && kernelAtLeast(t, tt.major, tt.minor) {
			want = "true"
		}
		if got[tt.key] != want {
			t.Errorf("%s = %q, want %q on this kernel", tt.key, got[tt.key], want)
		}
	}
	if v := got[featShiftfs]; v != "true" && v != "false" {
		t.Errorf("shiftfs = %q", v)
	}
	if len(got) != 7 {
		t.Errorf("%d features, want LXD's 7: %v", len(got), got)
	}
}

// A directory where the probe cannot write says false, not an error.
func TestProbeFileCapsUnwritable(t *testing.T) {
	if nsFileCaps(filepath.Join(t.TempDir(), "missing")) {
		t.Error("file capabilities reported in a directory that does not exist")
	}
}

func TestHasFilesystem(t *testing.T) {
	p := filepath.Join(t.TempDir(), "filesystems")
	if err := os.WriteFile(p, []byte("nodev\tsysfs\nnodev\tshiftfs\n\text4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for fs, want := range map[string]bool{"shiftfs": true, "ext4": true, "nodev": false, "btrfs": false} {
		if got := hasFilesystem(p, fs); got != want {
			t.Errorf("%s: %v, want %v", fs, got, want)
		}
	}
	if hasFilesystem(filepath.Join(t.TempDir(), "none"), "ext4") {
		t.Error("missing file lists ext4")
	}
}
