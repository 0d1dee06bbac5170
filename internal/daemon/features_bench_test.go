package daemon

import "testing"

// BenchmarkProbeKernelFeatures measures what the probe adds to the
// daemon's start.
func BenchmarkProbeKernelFeatures(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		probeKernelFeatures(dir)
	}
}

func BenchmarkUeventInjection(b *testing.B) {
	for b.Loop() {
		ueventInjection()
	}
}
