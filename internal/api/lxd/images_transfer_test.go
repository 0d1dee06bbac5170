package lxd

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
)

func TestSplitUpload(t *testing.T) {
	type part struct{ field, body string }
	tests := []struct {
		name       string
		parts      []part
		noBoundary bool
		wantMeta   string
		wantRootfs string
		wantErr    string // at the metadata part, or else at the rootfs part
	}{
		{name: "as lxc sends it", parts: []part{{"metadata", "M"}, {"rootfs", "R"}}, wantMeta: "M", wantRootfs: "R"},
		{name: "rootfs first", parts: []part{{"rootfs", "R"}, {"metadata", "M"}}, wantErr: `the first part is "rootfs"`},
		{name: "virtual machine (its disk is checked by the store)", parts: []part{{"metadata", "M"}, {"rootfs.img", "R"}}, wantMeta: "M", wantRootfs: "R"},
		{name: "metadata only", parts: []part{{"metadata", "M"}}, wantMeta: "M", wantErr: `no "rootfs" part`},
		{name: "unknown second part", parts: []part{{"metadata", "M"}, {"disk", "R"}}, wantMeta: "M", wantErr: `the second part is "disk"`},
		{name: "no parts", wantErr: "multipart upload"},
		{name: "no boundary", noBoundary: true, wantErr: "without a boundary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for _, p := range tc.parts {
				w, _ := mw.CreateFormFile(p.field, p.field+".tar")
				io.WriteString(w, p.body)
			}
			mw.Close()
			r := httptest.NewRequest("POST", "/1.0/images", &body)
			r.Header.Set("Content-Type", mw.FormDataContentType())
			if tc.noBoundary {
				r.Header.Set("Content-Type", "multipart/form-data")
			}
			var meta image.ImportMeta
			check := func(err error) bool {
				t.Helper()
				if err == nil {
					return false
				}
				if !errorsIsInvalid(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want invalid argument containing %q", err, tc.wantErr)
				}
				return true
			}
			mr, err := splitUpload(r, &meta)
			if check(err) {
				if tc.wantMeta != "" {
					t.Fatalf("refused at the metadata part: %v", err)
				}
				return
			}
			if got, _ := io.ReadAll(mr); string(got) != tc.wantMeta {
				t.Errorf("metadata %q, want %q", got, tc.wantMeta)
			}
			rr, err := meta.Rootfs()
			if check(err) {
				return
			}
			if tc.wantErr != "" {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			if got, _ := io.ReadAll(rr); string(got) != tc.wantRootfs {
				t.Errorf("rootfs %q, want %q", got, tc.wantRootfs)
			}
		})
	}
}

func errorsIsInvalid(err error) bool { return errors.Is(err, errdefs.ErrInvalidArgument) }
