package qemu

import "testing"

func TestCPUVirtFlag(t *testing.T) {
	for _, tc := range []struct {
		name, cpuinfo string
		want          bool
	}{
		{"intel", "processor\t: 0\nflags\t\t: fpu vme vmx sse2\n", true},
		{"amd", "processor\t: 0\nflags\t\t: fpu svm lm\n", true},
		// A guest without nested virtualisation, whose /dev/kvm may be
		// kvm_pvm's: QEMU cannot use it for a normal guest.
		{"guest without", "processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n", false},
		{"substring is not a flag", "flags\t\t: vmxnet svmx\n", false},
		{"only the first flags line", "flags\t\t: fpu\nflags\t\t: vmx\n", false},
		{"vmx outside flags", "model name\t: vmx svm\n", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cpuVirtFlag(tc.cpuinfo); got != tc.want {
				t.Errorf("cpuVirtFlag(%q) = %v, want %v", tc.cpuinfo, got, tc.want)
			}
		})
	}
}
