package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// fakeFirmwareDir makes a directory holding OVMF's file names (empty
// files: only the names matter to the command line).
func fakeFirmwareDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFirmwareFor(t *testing.T) {
	all := []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"}
	for _, tc := range []struct {
		name      string
		files     []string
		secure    bool
		wantCode  string
		wantVars  string
		wantNVRAM string
		wantErr   string
	}{
		{"secure boot", all, true, "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", "nvram-secboot.fd", ""},
		{"plain", all, false, "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "nvram.fd", ""},
		{"secure boot without the secboot build", all[:2], true, "", "", "", "security.secureboot"},
		{"plain without firmware", nil, false, "", "", "", "install ovmf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeFirmwareDir(t, tc.files...)
			fw, err := firmwareFor(dir, tc.secure)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want an invalid-argument one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fw.Code != filepath.Join(dir, tc.wantCode) || fw.Vars != filepath.Join(dir, tc.wantVars) || fw.NVRAM != tc.wantNVRAM || fw.Secure != tc.secure {
				t.Fatalf("firmware %+v", fw)
			}
		})
	}
}

// argAfter returns every value that follows flag on the command line.
func argsAfter(args []string, flag string) []string {
	var out []string
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

func TestEFIArgs(t *testing.T) {
	d := &Driver{}
	dir := "/var/lib/hangar/vms/h7"
	for _, tc := range []struct {
		name        string
		fw          firmware
		incoming    string
		wantMachine string
		wantGlobals []string
		wantPflash  []string
	}{
		{
			name:        "secure boot",
			fw:          firmware{Code: "/fw/CODE.secboot.fd", Vars: "/fw/VARS.ms.fd", NVRAM: "nvram-secboot.fd", Secure: true},
			wantMachine: "q35,smm=on",
			wantGlobals: []string{"ICH9-LPC.disable_s3=1", "driver=cfi.pflash01,property=secure,value=on"},
			wantPflash: []string{
				"if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.secboot.fd",
				"if=pflash,format=raw,unit=1,file=" + dir + "/nvram-secboot.fd",
			},
		},
		{
			name:        "plain",
			fw:          firmware{Code: "/fw/CODE.fd", Vars: "/fw/VARS.fd", NVRAM: "nvram.fd"},
			incoming:    "fd:3",
			wantMachine: "q35",
			wantGlobals: []string{"ICH9-LPC.disable_s3=1"},
			wantPflash: []string{
				"if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
				"if=pflash,format=raw,unit=1,file=" + dir + "/nvram.fd",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := d.efiArgs(dir, tc.fw, 2, 1<<30, tc.incoming)
			if got := argsAfter(args, "-machine"); !slices.Equal(got, []string{tc.wantMachine}) {
				t.Fatalf("-machine %v, want %s", got, tc.wantMachine)
			}
			if got := argsAfter(args, "-global"); !slices.Equal(got, tc.wantGlobals) {
				t.Fatalf("-global %v, want %v", got, tc.wantGlobals)
			}
			var pflash []string
			for _, dr := range argsAfter(args, "-drive") {
				if strings.HasPrefix(dr, "if=pflash") {
					pflash = append(pflash, dr)
				}
			}
			if !slices.Equal(pflash, tc.wantPflash) {
				t.Fatalf("pflash drives %v, want %v", pflash, tc.wantPflash)
			}
			for _, absent := range []string{"-kernel", "-initrd", "-append", "-no-reboot"} {
				if slices.Contains(args, absent) {
					t.Fatalf("%s on a firmware-booted VM's command line: %v", absent, args)
				}
			}
			// The disks come from diskArgs (TestDiskArgs).
			if got := argsAfter(args, "-blockdev"); len(got) != 0 {
				t.Fatalf("disks on the base command line: %v", got)
			}
			if got := argsAfter(args, "-m"); !slices.Equal(got, []string{"1024M"}) {
				t.Fatalf("-m %v", got)
			}
			if got := argsAfter(args, "-incoming"); (tc.incoming != "") != (len(got) == 1) {
				t.Fatalf("-incoming %v with incoming %q", got, tc.incoming)
			}
		})
	}
}
