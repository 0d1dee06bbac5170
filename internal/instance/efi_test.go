package instance

import (
	"errors"
	"testing"

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

func TestSecureBootOf(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    bool
		wantErr bool
	}{
		{value: "", want: true}, // on unless turned off, as in LXD
		{value: "true", want: true},
		{value: "false"},
		{value: "perhaps", wantErr: true},
	} {
		got, err := secureBootOf(map[string]string{"security.secureboot": tc.value})
		if tc.wantErr != (err != nil) || got != tc.want {
			t.Errorf("security.secureboot=%q: %v, %v", tc.value, got, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("security.secureboot=%q: %v is not invalid-argument", tc.value, err)
		}
	}
}
