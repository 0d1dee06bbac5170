package query

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
)

// cpuTime is the process's CPU time (user and system): on a shared,
// loaded machine it says what a call costs where wall time says how
// long it waited too.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchEntries is n instances with every field of seed 000's entry, as
// the edge decodes them.
func benchEntries(b *testing.B, n int) []map[string]any {
	b.Helper()
	statuses := []string{"RUNNING", "STOPPED", "RUNNING", "ERROR", "FROZEN"}
	oses := []string{"Debian", "Ubuntu", "Alpine", "Fedora"}
	raw := make([]map[string]any, n)
	for i := range raw {
		typ := "CONTAINER"
		if i%3 == 0 {
			typ = "VM"
		}
		var memory any = (i%8 + 1) << 28
		if i%10 == 0 {
			memory = nil
		}
		raw[i] = map[string]any{
			"id": fmt.Sprintf("inst%04d", i), "name": fmt.Sprintf("inst%04d", i), "type": typ,
			"status": statuses[i%len(statuses)], "cpu": fmt.Sprint(i%4 + 1), "memory": memory,
			"autostart": i%2 == 0, "environment": map[string]any{"TZ": "UTC", "ROLE": fmt.Sprint("r", i%7)},
			"aliases": []any{
				map[string]any{"type": "INET", "address": fmt.Sprintf("10.0.%d.%d", i/250, i%250+2), "netmask": 24},
				map[string]any{"type": "INET6", "address": fmt.Sprintf("fd42::%x", i+2), "netmask": 64},
			},
			"image": map[string]any{"architecture": "amd64", "description": oses[i%len(oses)] + " image", "os": oses[i%len(oses)],
				"release": "stable", "serial": "20240101", "type": "container", "variant": "default", "secureboot": nil},
			"raw": nil, "idmap": map[string]any{
				"uid": map[string]any{"hostid": 1000000, "maprange": 65536, "nsid": 0},
				"gid": map[string]any{"hostid": 1000000, "maprange": 65536, "nsid": 0}},
			"vnc_enabled": typ == "VM", "vnc_port": nil, "vnc_password": nil, "secure_boot": nil, "privileged": false,
			"root_disk_size": nil, "root_disk_io_bus": nil, "storage_pool": "default",
		}
	}
	data, err := json.Marshal(raw)
	if err != nil {
		b.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkQuery is issue 16's figure: virt.instance.query with filters
// (equality, a nested OR, a path into a list) and select and order_by
// over 1000 instances, Parse included (the edge parses per call). The
// target is 20 ms per call.
func BenchmarkQuery(b *testing.B) {
	es := benchEntries(b, 1000)
	filters := json.RawMessage(`[["status","in",["RUNNING","FROZEN"]],
		["OR",[["type","=","VM"],["image.os","^","Deb"]]],
		["aliases.*.address","^","10.0."]]`)
	options := json.RawMessage(`{"select":["id","name","status","memory","image.os","aliases"],
		"order_by":["nulls_last:-memory","name"]}`)
	b.ReportAllocs()
	var got, n int
	start := cpuTime(b)
	for b.Loop() {
		n++
		q, err := Parse(filters, options)
		if err != nil {
			b.Fatal(err)
		}
		res, err := q.Run(es)
		if err != nil {
			b.Fatal(err)
		}
		got = len(res.([]map[string]any))
	}
	if got == 0 {
		b.Fatal("nothing matched")
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(n), "cpu-ns/op")
	b.ReportMetric(float64(got), "matches")
}

// BenchmarkQueryAll is the same without filters: select and order over
// all 1000.
func BenchmarkQueryAll(b *testing.B) {
	es := benchEntries(b, 1000)
	options := json.RawMessage(`{"select":["id","name","status","memory","image.os"],"order_by":["nulls_first:memory","-name"]}`)
	b.ReportAllocs()
	for b.Loop() {
		q, err := Parse(nil, options)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.Run(es); err != nil {
			b.Fatal(err)
		}
	}
}
