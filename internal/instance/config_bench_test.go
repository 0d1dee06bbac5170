package instance

import (
	"fmt"
	"testing"
)

// BenchmarkValidateConfig is the check every create, PUT and PATCH runs on
// the config a client sent: a typical instance config (limits, environment,
// boot and user keys, and the read-only keys a PUT echoes back), and a large
// one of 200 user and environment keys.
func BenchmarkValidateConfig(b *testing.B) {
	typical := map[string]string{
		"limits.cpu":                 "0-1,3",
		"limits.memory":              "512MiB",
		"limits.processes":           "200",
		"boot.autostart":             "true",
		"boot.autostart.priority":    "10",
		"security.privileged":        "false",
		"security.protection.delete": "no",
		"environment.MODE":           "prod",
		"environment.HTTP_PORT":      "8080",
		"user.role":                  "web",
		"image.os":                   "busybox",
		"volatile.base_image":        "4f1c2e0a9b",
		"volatile.last_state.power":  "RUNNING",
	}
	allowed := map[string]string{
		"image.os":                  "busybox",
		"volatile.base_image":       "4f1c2e0a9b",
		"volatile.last_state.power": "RUNNING",
	}
	large := map[string]string{"limits.memory": "1GB", "limits.cpu": "2"}
	for i := range 100 {
		large[fmt.Sprintf("user.key%03d", i)] = fmt.Sprintf("value %d", i)
		large[fmt.Sprintf("environment.VAR_%03d", i)] = "x"
	}
	for _, c := range []struct {
		name string
		cfg  map[string]string
	}{{"typical", typical}, {"large", large}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := validateUserConfig(c.cfg, allowed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExpandConfig layers two profiles under an instance's own config,
// as every read of an instance does.
func BenchmarkExpandConfig(b *testing.B) {
	local := map[string]string{"limits.memory": "512MiB", "user.role": "web", "volatile.base_image": "4f1c2e0a9b"}
	profiles := []profileView{
		{Name: "default", Config: map[string]string{"boot.autostart": "true", "limits.processes": "500"}},
		{Name: "small", Config: map[string]string{"limits.memory": "128MiB", "limits.cpu": "1"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		expandSink = expandConfig(local, profiles)
	}
	if len(expandSink) != 6 {
		b.Fatalf("expanded to %d keys, want 6", len(expandSink))
	}
}

// expandSink keeps the compiler from proving the result unused.
var expandSink map[string]string
