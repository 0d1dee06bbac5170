package query

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// fixture is five instances in the shape of virt.instance.query's
// entries (seed 000), decoded as an edge decodes them.
const fixture = `[
{"id":"web","name":"web","type":"CONTAINER","status":"RUNNING","cpu":"2","memory":1073741824,"autostart":true,
 "environment":{"TZ":"UTC"},"aliases":[{"type":"INET","address":"10.0.3.5","netmask":24},{"type":"INET6","address":"fd42::5","netmask":64}],
 "image":{"architecture":"amd64","description":"Debian bookworm","os":"Debian","release":"bookworm","serial":"20240101","type":"container","variant":"default","secureboot":null},
 "raw":null,"idmap":null,"vnc_enabled":false,"vnc_port":null,"vnc_password":null,"secure_boot":null,"privileged":false,
 "root_disk_size":null,"root_disk_io_bus":null,"storage_pool":"default","tags":["prod","Blue"]},
{"id":"db","name":"db","type":"CONTAINER","status":"STOPPED","cpu":null,"memory":null,"autostart":false,
 "environment":{},"aliases":[],
 "image":{"architecture":"amd64","description":"Alpine 3.20","os":"Alpine","release":"3.20","serial":"20240202","type":"container","variant":"default","secureboot":null},
 "raw":null,"idmap":null,"vnc_enabled":false,"vnc_port":null,"vnc_password":null,"secure_boot":null,"privileged":true,
 "root_disk_size":null,"root_disk_io_bus":null,"storage_pool":"fast","tags":["prod"]},
{"id":"vm1","name":"vm1","type":"VM","status":"RUNNING","cpu":"4","memory":4294967296,"autostart":true,
 "environment":{},"aliases":[{"type":"INET","address":"10.0.3.7","netmask":24}],
 "image":{"architecture":"amd64","description":"Ubuntu noble","os":"Ubuntu","release":"noble","serial":"20240303","type":"virtual-machine","variant":"cloud","secureboot":true},
 "raw":null,"idmap":null,"vnc_enabled":true,"vnc_port":5901,"vnc_password":"s3cret","secure_boot":true,"privileged":null,
 "root_disk_size":20,"root_disk_io_bus":"NVME","storage_pool":"default","tags":[]},
{"id":"vm2","name":"VM2-test","type":"VM","status":"STOPPED","cpu":"1","memory":536870912,"autostart":false,
 "environment":{"A":"1"},"aliases":[],
 "image":{"architecture":"arm64","description":"Debian trixie","os":"Debian","release":"trixie","serial":"20240404","type":"virtual-machine","variant":"default","secureboot":false},
 "raw":null,"idmap":null,"vnc_enabled":false,"vnc_port":null,"vnc_password":null,"secure_boot":false,"privileged":null,
 "root_disk_size":10,"root_disk_io_bus":"VIRTIO-BLK","storage_pool":"fast","tags":["test"]},
{"id":"old","name":"old","type":"CONTAINER","status":"ERROR","cpu":"1","memory":268435456,"autostart":false,
 "environment":{},"aliases":[{"type":"INET","address":"10.0.4.9","netmask":24}],
 "image":null,
 "raw":null,"idmap":{"uid":{"hostid":100000,"maprange":65536,"nsid":0},"gid":{"hostid":100000,"maprange":65536,"nsid":0}},
 "vnc_enabled":false,"vnc_port":null,"vnc_password":null,"secure_boot":null,"privileged":false,
 "root_disk_size":null,"root_disk_io_bus":null,"storage_pool":"default"}
]`

func entries(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(fixture), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// entriesNumber decodes the fixture with json.Number, the other way the
// contract allows.
func entriesNumber(t testing.TB) []map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(fixture))
	d.UseNumber()
	var out []map[string]any
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(t *testing.T, res any) []string {
	t.Helper()
	list, ok := res.([]map[string]any)
	if !ok {
		t.Fatalf("result %T, want a list", res)
	}
	out := []string{}
	for _, e := range list {
		id, _ := e["id"].(string)
		out = append(out, id)
	}
	return out
}

func run(t *testing.T, filters, options string, es []map[string]any) (any, error) {
	t.Helper()
	q, err := Parse(json.RawMessage(filters), json.RawMessage(options))
	if err != nil {
		t.Fatalf("Parse(%s, %s): %v", filters, options, err)
	}
	return q.Run(es)
}

// TestFilters: every operator, its C variant, paths, OR nesting, over
// entries decoded both with float64 and with json.Number.
func TestFilters(t *testing.T) {
	tests := []struct {
		name    string
		filters string
		want    []string
	}{
		{"none", `[]`, []string{"web", "db", "vm1", "vm2", "old"}},
		{"null", `null`, []string{"web", "db", "vm1", "vm2", "old"}},
		{"=", `[["name","=","web"]]`, []string{"web"}},
		{"= number", `[["memory","=",1073741824]]`, []string{"web"}},
		{"= number as float", `[["memory","=",1073741824.0]]`, []string{"web"}},
		{"= bool", `[["autostart","=",true]]`, []string{"web", "vm1"}},
		{"= 1 is true (Python)", `[["autostart","=",1]]`, []string{"web", "vm1"}},
		{"= null", `[["memory","=",null]]`, []string{"db"}},
		{"= list", `[["tags","=",["prod"]]]`, []string{"db"}},
		{"= object", `[["environment","=",{"TZ":"UTC"}]]`, []string{"web"}},
		{"= string vs number", `[["cpu","=",2]]`, []string{}},
		{"!=", `[["status","!=","RUNNING"]]`, []string{"db", "vm2", "old"}},
		{"!= missing field matches nothing", `[["tags","!=","x"]]`, []string{"web", "db", "vm1", "vm2"}},
		{">", `[["memory","!=",null],["memory",">",536870912]]`, []string{"web", "vm1"}},
		{">=", `[["memory","!=",null],["memory",">=",536870912]]`, []string{"web", "vm1", "vm2"}},
		{"<", `[["vnc_port","!=",null],["vnc_port","<",6000]]`, []string{"vm1"}},
		{"<= string", `[["name","<=","db"]]`, []string{"db", "vm2"}},
		{"> string", `[["name",">","vm"]]`, []string{"web", "vm1"}},
		{"~ anchored at start", `[["name","~","v"]]`, []string{"vm1"}},
		{"~ not a search", `[["name","~","m1"]]`, []string{}},
		{"~ class", `[["name","~","(web|db)$"]]`, []string{"web", "db"}},
		{"~ null is empty", `[["vnc_password","~","^$"]]`, []string{"web", "db", "vm2", "old"}},
		{"in", `[["status","in",["RUNNING","ERROR"]]]`, []string{"web", "vm1", "old"}},
		{"in numbers", `[["vnc_port","in",[5900,5901]]]`, []string{"vm1"}},
		{"in null", `[["memory","in",[null,268435456]]]`, []string{"db", "old"}},
		{"in string", `[["name","in","a web server"]]`, []string{"web"}},
		{"nin", `[["status","nin",["RUNNING"]]]`, []string{"db", "vm2", "old"}},
		{"nin null is no match", `[["memory","nin",[1]]]`, []string{"web", "vm1", "vm2", "old"}},
		{"rin list", `[["tags","rin","prod"]]`, []string{"web", "db"}},
		{"rin string", `[["name","rin","test"]]`, []string{"vm2"}},
		{"rin object keys", `[["environment","rin","TZ"]]`, []string{"web"}},
		{"rin null is no match", `[["vnc_password","rin","s"]]`, []string{"vm1"}},
		{"rnin", `[["tags","rnin","prod"]]`, []string{"vm1", "vm2"}},
		{"^", `[["name","^","vm"]]`, []string{"vm1"}},
		{"!^", `[["name","!^","vm"]]`, []string{"web", "db", "vm2", "old"}},
		{"$", `[["name","$","test"]]`, []string{"vm2"}},
		{"!$", `[["storage_pool","!$","ult"]]`, []string{"db", "vm2"}},
		{"^ null is no match", `[["vnc_password","^",""]]`, []string{"vm1"}},
		{"!^ null is no match", `[["vnc_password","!^","x"]]`, []string{"vm1"}},
		{"C=", `[["name","C=","vm2-TEST"]]`, []string{"vm2"}},
		{"C!=", `[["name","C!=","vm2-test"]]`, []string{"web", "db", "vm1", "old"}},
		{"C^", `[["name","C^","VM"]]`, []string{"vm1", "vm2"}},
		{"C$", `[["name","C$","TEST"]]`, []string{"vm2"}},
		{"C!$", `[["name","C!$","TEST"]]`, []string{"web", "db", "vm1", "old"}},
		{"C!^", `[["name","C!^","VM"]]`, []string{"web", "db", "old"}},
		{"Cin", `[["name","Cin",["WEB","DB"]]]`, []string{"web", "db"}},
		{"Cnin", `[["name","Cnin",["WEB","DB"]]]`, []string{"vm1", "vm2", "old"}},
		{"Crin list", `[["tags","Crin","blue"]]`, []string{"web"}},
		{"Crnin", `[["tags","Crnin","BLUE"]]`, []string{"db", "vm1", "vm2"}},
		{"C~", `[["name","C~","vm2-"]]`, []string{"vm2"}},
		{"C= null field", `[["vnc_password","C=",null]]`, []string{"web", "db", "vm2", "old"}},
		{"C>", `[["name","C>","VM1"]]`, []string{"web", "vm2"}},
		{"C>= C< C<=", `[["name","C>=","VM1"],["name","C<","vm2"],["name","C<=","VM1"]]`, []string{"vm1"}},
		{"AND", `[["type","=","VM"],["status","=","RUNNING"]]`, []string{"vm1"}},
		{"nested path", `[["image.os","=","Debian"]]`, []string{"web", "vm2"}},
		{"nested path through null compares null", `[["image.os","=",null]]`, []string{"old"}},
		{"nested path missing", `[["image.nope","=",null]]`, []string{"old"}},
		{"deep path", `[["idmap.uid.hostid","=",100000]]`, []string{"old"}},
		{"list index", `[["aliases.0.address","=","10.0.3.7"]]`, []string{"vm1"}},
		{"list index out of range is null", `[["aliases.1.address","=",null]]`, []string{"db", "vm1", "vm2", "old"}},
		{"wildcard", `[["aliases.*.address","=","fd42::5"]]`, []string{"web"}},
		{"wildcard any", `[["aliases.*.type","=","INET"]]`, []string{"web", "vm1", "old"}},
		{"wildcard ^", `[["aliases.*.address","^","10.0.3."]]`, []string{"web", "vm1"}},
		{"wildcard leaf", `[["tags.*","=","test"]]`, []string{"vm2"}},
		{"wildcard empty list", `[["aliases.*.netmask",">",0]]`, []string{"web", "vm1", "old"}},
		{"name key on a list", `[["aliases.type","=","INET"]]`, []string{}},
		{"escaped dot", `[["a\\.b","=",1]]`, []string{}},
		{"OR", `[["OR",[["name","=","web"],["name","=","db"]]]]`, []string{"web", "db"}},
		{"OR of ANDs", `[["OR",[[["type","=","VM"],["status","=","RUNNING"]],[["type","=","CONTAINER"],["status","=","ERROR"]]]]]`, []string{"vm1", "old"}},
		{"OR mixed", `[["OR",[[["type","=","VM"],["autostart","=",false]],["name","=","web"]]]]`, []string{"web", "vm2"}},
		{"OR nested", `[["OR",[["OR",[["name","=","web"],["name","=","db"]]],["name","=","old"]]]]`, []string{"web", "db", "old"}},
		{"OR and AND", `[["status","=","RUNNING"],["OR",[["name","=","web"],["name","=","db"]]]]`, []string{"web"}},
		{"OR with a type-mismatch-free branch", `[["OR",[["memory","=",null],["memory",">=",4294967296]]]]`, []string{"db", "vm1"}},
	}
	for _, dec := range []struct {
		name string
		es   func(testing.TB) []map[string]any
	}{{"float64", entries}, {"json.Number", entriesNumber}} {
		for _, tt := range tests {
			t.Run(dec.name+"/"+tt.name, func(t *testing.T) {
				res, err := run(t, tt.filters, `{}`, dec.es(t))
				if err != nil {
					t.Fatal(err)
				}
				got := ids(t, res)
				want := tt.want
				if want == nil {
					want = []string{}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v, want %v", tt.filters, got, want)
				}
			})
		}
	}
}

// TestOptions: select, order_by, offset, limit, count, get.
func TestOptions(t *testing.T) {
	tests := []struct {
		name             string
		filters, options string
		want             string // the result as JSON
	}{
		{"select", `[["name","=","web"]]`, `{"select":["name","status"]}`, `[{"name":"web","status":"RUNNING"}]`},
		{"select nested", `[["type","=","VM"]]`, `{"select":["name","image.os","image.release"]}`,
			`[{"name":"vm1","image":{"os":"Ubuntu","release":"noble"}},{"name":"VM2-test","image":{"os":"Debian","release":"trixie"}}]`},
		{"select nested through null is absent", `[["name","=","old"]]`, `{"select":["name","image.os"]}`, `[{"name":"old"}]`},
		{"select whole then part", `[["name","=","vm1"]]`, `{"select":["idmap","image","image.os"]}`,
			`[{"idmap":null,"image":{"architecture":"amd64","description":"Ubuntu noble","os":"Ubuntu","release":"noble","serial":"20240303","type":"virtual-machine","variant":"cloud","secureboot":true}}]`},
		{"select part then whole", `[["name","=","vm1"]]`, `{"select":["image.os","image"]}`,
			`[{"image":{"architecture":"amd64","description":"Ubuntu noble","os":"Ubuntu","release":"noble","serial":"20240303","type":"virtual-machine","variant":"cloud","secureboot":true}}]`},
		{"select alias", `[["name","=","vm1"]]`, `{"select":[["name","n"],["image.os","os"]]}`, `[{"n":"vm1","os":"Ubuntu"}]`},
		{"select missing field", `[["name","=","old"]]`, `{"select":["name","tags"]}`, `[{"name":"old"}]`},
		{"select escaped dot", `[["name","=","web"]]`, `{"select":["environment.TZ"]}`, `[{"environment":{"TZ":"UTC"}}]`},
		{"order_by", `[]`, `{"select":["id"],"order_by":["name"]}`, `[{"id":"vm2"},{"id":"db"},{"id":"old"},{"id":"vm1"},{"id":"web"}]`},
		{"order_by desc", `[]`, `{"select":["id"],"order_by":["-name"]}`, `[{"id":"web"},{"id":"vm1"},{"id":"old"},{"id":"db"},{"id":"vm2"}]`},
		{"order_by two keys, first primary", `[]`, `{"select":["id"],"order_by":["type","-storage_pool","name"]}`,
			`[{"id":"db"},{"id":"old"},{"id":"web"},{"id":"vm2"},{"id":"vm1"}]`},
		{"order_by number desc", `[["memory","!=",null]]`, `{"select":["id"],"order_by":["-memory"]}`,
			`[{"id":"vm1"},{"id":"web"},{"id":"vm2"},{"id":"old"}]`},
		{"nulls_first", `[]`, `{"select":["id"],"order_by":["nulls_first:memory"]}`,
			`[{"id":"db"},{"id":"old"},{"id":"vm2"},{"id":"web"},{"id":"vm1"}]`},
		{"nulls_last desc", `[]`, `{"select":["id"],"order_by":["nulls_last:-memory"]}`,
			`[{"id":"vm1"},{"id":"web"},{"id":"vm2"},{"id":"old"},{"id":"db"}]`},
		{"nulls_first desc", `[]`, `{"select":["id"],"order_by":["nulls_first:-vnc_port","name"]}`,
			`[{"id":"vm2"},{"id":"db"},{"id":"old"},{"id":"web"},{"id":"vm1"}]`},
		{"nulls_last nested path", `[]`, `{"select":["id"],"order_by":["nulls_last:image.release"]}`,
			`[{"id":"db"},{"id":"web"},{"id":"vm1"},{"id":"vm2"},{"id":"old"}]`},
		{"order by an unselected field", `[["type","=","VM"]]`, `{"select":["name"],"order_by":["-memory"]}`, `[{"name":"vm1"},{"name":"VM2-test"}]`},
		{"order by a select alias", `[["type","=","VM"]]`, `{"select":[["memory","m"]],"order_by":["m"]}`, `[{"m":536870912},{"m":4294967296}]`},
		{"order by a list index", `[["aliases.0.address","!=",null]]`, `{"select":["id"],"order_by":["-aliases.0.address"]}`,
			`[{"id":"old"},{"id":"vm1"},{"id":"web"}]`},
		{"offset", `[]`, `{"select":["id"],"order_by":["id"],"offset":3}`, `[{"id":"vm2"},{"id":"web"}]`},
		{"offset past the end", `[]`, `{"offset":9}`, `[]`},
		{"limit", `[]`, `{"select":["id"],"order_by":["id"],"limit":2}`, `[{"id":"db"},{"id":"old"}]`},
		{"offset and limit", `[]`, `{"select":["id"],"order_by":["id"],"offset":1,"limit":2}`, `[{"id":"old"},{"id":"vm1"}]`},
		{"limit 0 is all", `[["type","=","VM"]]`, `{"select":["id"],"limit":0}`, `[{"id":"vm1"},{"id":"vm2"}]`},
		{"count", `[["type","=","CONTAINER"]]`, `{"count":true}`, `3`},
		{"count ignores paging", `[]`, `{"count":true,"limit":1,"offset":1,"order_by":["memory"]}`, `5`},
		{"count none", `[["name","=","x"]]`, `{"count":true}`, `0`},
		{"get", `[["type","=","VM"]]`, `{"get":true,"select":["id"]}`, `{"id":"vm1"}`},
		{"get ordered", `[["type","=","VM"]]`, `{"get":true,"select":["id"],"order_by":["-name"],"limit":1}`, `{"id":"vm1"}`},
		{"get ordered asc", `[["type","=","VM"]]`, `{"get":true,"select":["id"],"order_by":["name"]}`, `{"id":"vm2"}`},
		{"get without filters", `[]`, `{"get":true,"select":["id"]}`, `{"id":"web"}`},
		{"datastore options are taken", `[["name","=","db"]]`, `{"select":["id"],"extend":null,"extend_context":"x","prefix":null,"relationships":true,"force_sql_filters":false,"extra":{"a":1}}`, `[{"id":"db"}]`},
		{"null options", `[["name","=","db"]]`, `null`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := run(t, tt.filters, tt.options, entries(t))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(res)
			want := tt.want
			if want == "" {
				want = string(mustJSON(t, entries(t)[1:2]))
			}
			if !jsonEqual(t, got, []byte(want)) {
				t.Errorf("got %s\nwant %s", got, want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// TestRunLeavesEntries: Run reorders and projects copies, never the
// caller's slice or maps.
func TestRunLeavesEntries(t *testing.T) {
	es := entries(t)
	before := string(mustJSON(t, es))
	if _, err := run(t, `[]`, `{"order_by":["-name"],"select":["image.os","name"]}`, es); err != nil {
		t.Fatal(err)
	}
	if after := string(mustJSON(t, es)); after != before {
		t.Errorf("entries changed:\n%s\n%s", before, after)
	}
}

// TestGetNotFound: get with no match is errdefs.NotFound, ordered or not.
func TestGetNotFound(t *testing.T) {
	for _, opts := range []string{`{"get":true}`, `{"get":true,"order_by":["name"]}`} {
		_, err := run(t, `[["name","=","nope"]]`, opts, entries(t))
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: %v, want not found", opts, err)
		}
	}
}

// TestMatch: one entry against the filters, as an event stream uses it.
func TestMatch(t *testing.T) {
	q, err := Parse(json.RawMessage(`[["aliases.*.address","^","10.0.3."]]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, e := range entries(t) {
		ok, err := q.Match(e)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ok)
	}
	if want := []bool{true, false, true, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	var zero Query
	if zero.Get() || zero.Count() || zero.Extra() != nil {
		t.Error("the zero query is not a plain list")
	}
}

// TestParseErrors: every malformed filter and option is an *Error with
// the attribute path of the culprit, of kind invalid argument.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name             string
		filters, options string
		path             string
		words            string
	}{
		{"filters not JSON", `[`, ``, "query-filters", "invalid JSON"},
		{"filters trailing data", `[] []`, ``, "query-filters", "after the value"},
		{"filters an object", `{"name":"x"}`, ``, "query-filters", "list of filters"},
		{"filter not a list", `["name"]`, ``, "query-filters.0", "filter is a list"},
		{"filter of 1", `[["name"]]`, ``, "query-filters.0", "1 items"},
		{"filter of 4", `[["name","=","x","y"]]`, ``, "query-filters.0", "4 items"},
		{"field not a string", `[[1,"=","x"]]`, ``, "query-filters.0.0", "field"},
		{"field empty", `[["","=","x"]]`, ``, "query-filters.0.0", "field"},
		{"op not a string", `[["name",1,"x"]]`, ``, "query-filters.0.1", "operator"},
		{"bad op", `[["name","==","x"]]`, ``, "query-filters.0.1", `invalid operation "=="`},
		{"bad C op", `[["name","Clike","x"]]`, ``, "query-filters.0.1", `"Clike"`},
		{"bad op second filter", `[["name","=","x"],["name","like","x"]]`, ``, "query-filters.1.1", "like"},
		{"> null", `[["memory",">",null]]`, ``, "query-filters.0.2", "number or a string"},
		{"< list", `[["memory","<",[1]]]`, ``, "query-filters.0.2", "list"},
		{">= object", `[["memory",">=",{}]]`, ``, "query-filters.0.2", "object"},
		{"~ number", `[["name","~",1]]`, ``, "query-filters.0.2", "regular expression"},
		{"~ bad regex", `[["name","~","(a"]]`, ``, "query-filters.0.2", "invalid regular expression"},
		{"~ look-ahead", `[["name","~","a(?=b)"]]`, ``, "query-filters.0.2", "RE2"},
		{"in number", `[["name","in",1]]`, ``, "query-filters.0.2", "needs a list"},
		{"nin null", `[["name","nin",null]]`, ``, "query-filters.0.2", "needs a list"},
		{"^ number", `[["name","^",1]]`, ``, "query-filters.0.2", "needs a string"},
		{"!$ list", `[["name","!$",["a"]]]`, ``, "query-filters.0.2", "needs a string"},
		{"C= number", `[["name","C=",1]]`, ``, "query-filters.0.2", "list of strings"},
		{"Cin numbers", `[["name","Cin",["a",1]]]`, ``, "query-filters.0.2", "list of strings"},
		{"two items not OR", `[["AND",[["name","=","x"]]]]`, ``, "query-filters.0.0", "OR"},
		{"OR not a list", `[["OR","x"]]`, ``, "query-filters.0.1", "list"},
		{"OR empty", `[["OR",[]]]`, ``, "query-filters.0.1", "at least one branch"},
		{"OR branch empty", `[["OR",[[]]]]`, ``, "query-filters.0.1.0", "OR branch"},
		{"OR branch scalar", `[["OR",["x"]]]`, ``, "query-filters.0.1.0", "OR branch"},
		{"OR branch bad op", `[["OR",[["name","=","x"],["name","bad","y"]]]]`, ``, "query-filters.0.1.1.1", "bad"},
		{"OR conjunction bad op", `[["OR",[[["name","=","x"],["name","bad","y"]]]]]`, ``, "query-filters.0.1.0.1.1", "bad"},
		{"OR too deep", `[` + strings.Repeat(`["OR",[`, MaxDepth+2) + `["name","=","x"]` + strings.Repeat(`]]`, MaxDepth+2) + `]`, ``, "query-filters.0.1.0.1.0*", "deeper"},
		{"options not JSON", `[]`, `{`, "query-options", "invalid JSON"},
		{"options a list", `[]`, `[]`, "query-options", "object"},
		{"unknown option", `[]`, `{"sort":["name"]}`, "query-options.sort", "not permitted"},
		{"limit a string", `[]`, `{"limit":"5"}`, "query-options.limit", "int"},
		{"limit a float", `[]`, `{"limit":5.0}`, "query-options.limit", "int"},
		{"limit null", `[]`, `{"limit":null}`, "query-options.limit", "null"},
		{"limit negative", `[]`, `{"limit":-1}`, "query-options.limit", "between"},
		{"limit too big", `[]`, `{"limit":10001}`, "query-options.limit", "10000"},
		{"offset negative", `[]`, `{"offset":-1}`, "query-options.offset", "greater"},
		{"offset huge", `[]`, `{"offset":1e3}`, "query-options.offset", "int"},
		{"count a number", `[]`, `{"count":1}`, "query-options.count", "bool"},
		{"get a string", `[]`, `{"get":"true"}`, "query-options.get", "bool"},
		{"extra a list", `[]`, `{"extra":[]}`, "query-options.extra", "object"},
		{"extend a number", `[]`, `{"extend":1}`, "query-options.extend", "string or null"},
		{"get and limit", `[]`, `{"get":true,"limit":2}`, "query-options", "single result"},
		{"get and offset", `[]`, `{"get":true,"offset":1}`, "query-options", "single result"},
		{"get and count", `[]`, `{"get":true,"count":true}`, "query-options", "exclude"},
		{"select a string", `[]`, `{"select":"name"}`, "query-options.select", "list"},
		{"select item number", `[]`, `{"select":["name",1]}`, "query-options.select.1", "selector"},
		{"select item empty", `[]`, `{"select":[""]}`, "query-options.select.0", "non-empty"},
		{"select pair of 3", `[]`, `{"select":[["a","b","c"]]}`, "query-options.select.0", "two items"},
		{"select pair with number", `[]`, `{"select":[["a",1]]}`, "query-options.select.0.1", "string"},
		{"order_by a string", `[]`, `{"order_by":"name"}`, "query-options.order_by", "list"},
		{"order_by item number", `[]`, `{"order_by":["name",1]}`, "query-options.order_by.1", "string"},
		{"order_by empty field", `[]`, `{"order_by":["nulls_first:-"]}`, "query-options.order_by.0", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(json.RawMessage(tt.filters), json.RawMessage(tt.options))
			checkErr(t, err, tt.path, tt.words)
		})
	}
}

func checkErr(t *testing.T, err error, path, words string) {
	t.Helper()
	var qe *Error
	if !errors.As(err, &qe) {
		t.Fatalf("error %v (%T), want *Error", err, err)
	}
	if p, ok := strings.CutSuffix(path, "*"); ok && strings.HasPrefix(qe.Path, p) {
		path = qe.Path
	}
	if qe.Path != path {
		t.Errorf("path %q, want %q (%v)", qe.Path, path, err)
	}
	if !strings.Contains(qe.Message, words) {
		t.Errorf("message %q lacks %q", qe.Message, words)
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("%v is not an invalid argument", err)
	}
}

// TestRunErrors: what the middleware refuses at run time (Python's
// TypeError: ordering across types, null without a nulls prefix,
// selecting inside a list) is an *Error naming the filter or option.
func TestRunErrors(t *testing.T) {
	tests := []struct {
		name             string
		filters, options string
		path             string
		words            string
	}{
		{"> on null", `[["memory",">",1]]`, `{}`, "query-filters.0", "null"},
		{"> string vs number", `[["cpu",">",1]]`, `{}`, "query-filters.0", "string"},
		{"< on object", `[["name","=","web"],["image","<","a"]]`, `{}`, "query-filters.1", "object"},
		{"~ on number", `[["memory","~","1"]]`, `{}`, "query-filters.0", "regular expression"},
		{"^ on number", `[["memory","^","1"]]`, `{}`, "query-filters.0", "must be a string"},
		{"$ on list", `[["tags","$","d"]]`, `{}`, "query-filters.0", "must be a string"},
		{"in string on number", `[["memory","in","123"]]`, `{}`, "query-filters.0", "string"},
		{"rin on number", `[["memory","rin",1]]`, `{}`, "query-filters.0", "list"},
		{"rin number in string", `[["name","rin",1]]`, `{}`, "query-filters.0", "list"},
		{"rin list in object", `[["environment","rin",["a"]]]`, `{}`, "query-filters.0", "object"},
		{"C= on number", `[["memory","C=","1"]]`, `{}`, "query-filters.0", "case-insensitive"},
		{"in an OR", `[["OR",[["name","=","x"],["memory",">",1]]]]`, `{}`, "query-filters.0.1.1", "null"},
		{"wildcard on mixed", `[["aliases.*.netmask",">","a"]]`, `{}`, "query-filters.0", "number"},
		{"order_by null", `[]`, `{"order_by":["memory"]}`, "query-options.order_by.0", `nulls_first:memory`},
		{"order_by null desc", `[]`, `{"order_by":["storage_pool","-vnc_port"]}`, "query-options.order_by.1", `nulls_last:-vnc_port`},
		{"order_by objects", `[["image","!=",null]]`, `{"order_by":["image"]}`, "query-options.order_by.0", "do not order"},
		{"select in a list", `[["name","=","web"]]`, `{"select":["aliases.0.address"]}`, "query-options.select.0", "inside a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.filters, tt.options, entries(t))
			checkErr(t, err, tt.path, tt.words)
		})
	}
}

// TestSplitPath: dots, escaped dots, indexes and wildcards.
func TestSplitPath(t *testing.T) {
	tests := []struct {
		in   string
		want []seg
	}{
		{"a", []seg{{key: "a", idx: -1}}},
		{"a.b", []seg{{key: "a", idx: -1}, {key: "b", idx: -1}}},
		{`a\.b.c`, []seg{{key: "a.b", idx: -1}, {key: "c", idx: -1}}},
		{`a\.b\.c`, []seg{{key: "a.b.c", idx: -1}}},
		{"l.0.*", []seg{{key: "l", idx: -1}, {key: "0", idx: 0}, {key: "*", idx: -1, wild: true}}},
		{"l.007", []seg{{key: "l", idx: -1}, {key: "007", idx: 7}}},
		{"l.-1", []seg{{key: "l", idx: -1}, {key: "-1", idx: -1}}},
	}
	for _, tt := range tests {
		if got := splitPath(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// TestValues: Python's equality and ordering across the Go types an
// entry may hold.
func TestValues(t *testing.T) {
	type n = json.Number
	tests := []struct {
		a, b  any
		eq    bool
		cmp   int
		order bool
	}{
		{1.0, n("1"), true, 0, true},
		{int64(1) << 60, n("1152921504606846977"), false, -1, true}, // exact as ints
		{true, 1, true, 0, true},
		{false, 0.0, true, 0, true},
		{"a", "b", false, -1, true},
		{"é", "z", false, 1, true}, // code point order
		{nil, nil, true, 0, false},
		{nil, 0.0, false, 0, false},
		{"1", 1.0, false, 0, false},
		{[]any{1.0, "a"}, []any{n("1"), "b"}, false, -1, true},
		{[]any{1.0}, []any{1.0, 2.0}, false, -1, true},
		{[]string{"a"}, []any{"a"}, true, 0, true},
		{map[string]any{"a": 1.0}, map[string]any{"a": n("1")}, true, 0, false},
		{map[string]string{"a": "x"}, map[string]any{"a": "x"}, true, 0, false},
		{map[string]any{"a": 1.0}, map[string]any{"b": 1.0}, false, 0, false},
		{uint64(5), int32(5), true, 0, true},
		{float32(1.5), 1.5, true, 0, true},
		{struct{}{}, struct{}{}, false, 0, false},
	}
	for _, tt := range tests {
		if got := equal(tt.a, tt.b); got != tt.eq {
			t.Errorf("equal(%v, %v) = %v", tt.a, tt.b, got)
		}
		c, ok := compare(tt.a, tt.b)
		if ok != tt.order || c != tt.cmp {
			t.Errorf("compare(%v, %v) = %d, %v; want %d, %v", tt.a, tt.b, c, ok, tt.cmp, tt.order)
		}
	}
	if fold("ÀB Σς") != "àb σσ" || fold("abc") != "abc" || fold("ABC") != "abc" {
		t.Errorf("fold: %q", fold("ÀB Σς"))
	}
}
