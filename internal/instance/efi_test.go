package instance

import (
	"context"
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestImageFitsType(t *testing.T) {
	for _, tc := range []struct {
		imgType  string
		instType Type
		ok       bool
	}{
		{"container", TypeContainer, true},
		{"container", TypeVM, true},
		{"virtual-machine", TypeVM, true},
		{"virtual-machine", TypeContainer, false},
		{"virtual-machine", "", false},
	} {
		err := imageFitsType(Image{Type: Type(tc.imgType)}, fakeFP, tc.instType)
		if tc.ok != (err == nil) {
			t.Errorf("image %q as %q: %v", tc.imgType, tc.instType, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("image %q as %q: %v is not invalid-argument", tc.imgType, tc.instType, err)
		}
	}
}

// fakeDiskImages is fakeImages whose image is a qcow2 disk.
type fakeDiskImages struct{ fakeImages }

func (fakeDiskImages) Disk(context.Context, string) (string, string, bool, error) {
	return "/images/disk", "qcow2", true, nil
}

func TestVMDisk(t *testing.T) {
	for _, tc := range []struct {
		name       string
		images     Images
		secureboot string
		wantDisk   bool
		wantSecure bool
		wantErr    bool
	}{
		{name: "root-tree image", images: fakeImages{}},
		{name: "disk, secure boot by default", images: fakeDiskImages{}, wantDisk: true, wantSecure: true},
		{name: "disk, secure boot off", images: fakeDiskImages{}, secureboot: "false", wantDisk: true},
		{name: "disk, secure boot on", images: fakeDiskImages{}, secureboot: "true", wantDisk: true, wantSecure: true},
		{name: "disk, bad value", images: fakeDiskImages{}, secureboot: "perhaps", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{cfg: Config{Images: tc.images}}
			cfg := map[string]string{}
			if tc.secureboot != "" {
				cfg["security.secureboot"] = tc.secureboot
			}
			var spec driver.Spec
			isDisk, err := s.vmDisk(context.Background(), fakeFP, cfg, &spec)
			if tc.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want invalid-argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if isDisk != tc.wantDisk || (spec.Disk != nil) != tc.wantDisk || spec.SecureBoot != tc.wantSecure {
				t.Fatalf("isDisk %v, spec.Disk %+v, SecureBoot %v", isDisk, spec.Disk, spec.SecureBoot)
			}
			if tc.wantDisk && (spec.Disk.Path != "/images/disk" || spec.Disk.Format != "qcow2") {
				t.Fatalf("spec.Disk %+v", spec.Disk)
			}
		})
	}
}
