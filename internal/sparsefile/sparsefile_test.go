package sparsefile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteAt: what is written reads back whole, and the zero blocks are
// holes (the file takes only its data's blocks).
func TestWriteAt(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 3*writeChunk+100) // longer than one write
	tests := []struct {
		name      string
		parts     [][]byte // written one after the other
		maxBlocks int64    // 512-byte units the file may take
	}{
		{"all zeros", [][]byte{make([]byte, 1<<20)}, 0},
		{"data between holes", [][]byte{make([]byte, 8*Block), data, make([]byte, 16*Block)}, int64(len(data))/512 + 16},
		{"data only", [][]byte{data}, int64(len(data))/512 + 16},
		{"a short tail", [][]byte{make([]byte, Block), []byte("tail")}, 16},
		{"one byte in a block", [][]byte{append(make([]byte, 3*Block+7), 'z')}, Block / 512 * 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			var off int64
			for _, part := range tc.parts {
				if err := WriteAt(int(f.Fd()), part, off); err != nil {
					t.Fatal(err)
				}
				off += int64(len(part))
				want = append(want, part...)
			}
			if err := f.Truncate(off); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes (%v), want %d equal bytes", len(got), err, len(want))
			}
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks > tc.maxBlocks {
				t.Errorf("the file takes %d blocks of 512 bytes, want at most %d: zeros were written", st.Blocks, tc.maxBlocks)
			}
		})
	}
}
