package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

// fakeRequest is one request the fake daemon received.
type fakeRequest struct {
	Method  string
	URI     string
	IfMatch string
	Body    string
	Header  http.Header
}

// fakeHangard answers the routes it is given ("METHOD /path") on a unix
// socket and records every request.
type fakeHangard struct {
	socket string
	mu     sync.Mutex
	reqs   []fakeRequest
}

func newFakeHangard(t *testing.T, routes map[string]http.HandlerFunc) *fakeHangard {
	t.Helper()
	dir, err := os.MkdirTemp("", "hcli") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeHangard{socket: filepath.Join(dir, "s")}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := routes[r.Method+" "+r.URL.Path]
		if r.URL.Path == "/1.0/events" {
			// The websocket handler reads nothing more and must see the
			// untouched request.
			f.record(r, "")
			h(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		f.record(r, string(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !ok {
			fakeErr(w, http.StatusNotFound, "not found: "+r.Method+" "+r.URL.Path)
			return
		}
		h(w, r)
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

func (f *fakeHangard) record(r *http.Request, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, fakeRequest{r.Method, r.URL.RequestURI(), r.Header.Get("If-Match"), strings.TrimSpace(body), r.Header.Clone()})
}

// calls returns "METHOD URI" of every request, in order.
func (f *fakeHangard) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.Method+" "+r.URI)
	}
	return out
}

// request returns the first request with this method and path.
func (f *fakeHangard) request(t *testing.T, method, uri string) fakeRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs {
		if r.Method == method && r.URI == uri {
			return r
		}
	}
	t.Fatalf("no %s %s request; got %v", method, uri, f.reqs)
	return fakeRequest{}
}

func fakeOK(metadata any, etag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		md, _ := json.Marshal(metadata)
		json.NewEncoder(w).Encode(api.Response{Type: api.SyncResponse, Status: "Success", StatusCode: 200, Metadata: md})
	}
}

func fakeErr(w http.ResponseWriter, code int, msg string) {
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Response{Type: api.ErrorResponse, ErrorCode: code, Error: msg})
}

func fakeFail(code int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { fakeErr(w, code, msg) }
}

// fakeOp answers with an async envelope for operation id.
func fakeOp(id string, resources map[string][]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		md, _ := json.Marshal(api.Operation{ID: id, Class: "task", Status: "Running", StatusCode: api.Running, Resources: resources})
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(api.Response{Type: api.AsyncResponse, Status: "Operation created", StatusCode: 100,
			Operation: "/1.0/operations/" + id, Metadata: md})
	}
}

// fakeOpDone answers the /wait of an operation with its final state.
func fakeOpDone(id string, code api.StatusCode, errMsg string, metadata map[string]any) http.HandlerFunc {
	return fakeOK(api.Operation{ID: id, Status: code.String(), StatusCode: code, Err: errMsg, Metadata: metadata}, "")
}

// runCLI runs hangar against socket and returns exit code, stdout, stderr.
func runCLI(t *testing.T, socket, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"--socket", socket}, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

var (
	runningC1 = api.Instance{Name: "c1", Status: "Running", StatusCode: api.Running,
		InstancePut: api.InstancePut{Config: map[string]string{"limits.cpu": "1", "user.x": "y"}, Profiles: []string{"default"}}}
	stoppedC1 = api.Instance{Name: "c1", Status: "Stopped", StatusCode: api.Stopped,
		InstancePut: api.InstancePut{Profiles: []string{"default"}}}
)

func TestLaunch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		waitStatus api.StatusCode
		waitErr    string
		wantCode   int
		wantOut    string
		wantErr    string
		wantBody   string
	}{
		{
			name: "launch without name", args: []string{"launch", "alpine"}, waitStatus: api.Success,
			wantOut:  "Creating brave-fox\nStarting brave-fox\n",
			wantBody: `{"architecture":"","config":null,"devices":null,"ephemeral":false,"profiles":null,"stateful":false,"description":"","name":"","source":{"type":"image","alias":"alpine"},"instance_type":"","type":"container","start":true}`,
		},
		{
			name: "init with name and flags", args: []string{"init", "alpine", "c1", "-c", "limits.cpu=2", "-p", "default", "-p", "big", "-e"}, waitStatus: api.Success,
			wantOut:  "Creating c1\n",
			wantBody: `{"architecture":"","config":{"limits.cpu":"2"},"devices":null,"ephemeral":true,"profiles":["default","big"],"stateful":false,"description":"","name":"c1","source":{"type":"image","alias":"alpine"},"instance_type":"","type":"container","start":false}`,
		},
		{
			name: "operation failure", args: []string{"launch", "alpine", "c1", "--no-profiles"}, waitStatus: api.Failure, waitErr: "Failed to start instance: exec format error",
			wantCode: 1, wantOut: "Creating c1\n", wantErr: "Error: Failed to start instance: exec format error\n",
			wantBody: `{"architecture":"","config":null,"devices":null,"ephemeral":false,"profiles":[],"stateful":false,"description":"","name":"c1","source":{"type":"image","alias":"alpine"},"instance_type":"","type":"container","start":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "brave-fox"
			if len(tt.args) > 2 {
				name = tt.args[2]
			}
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"POST /1.0/instances":          fakeOp("op1", map[string][]string{"instances": {"/1.0/instances/" + name}}),
				"GET /1.0/operations/op1/wait": fakeOpDone("op1", tt.waitStatus, tt.waitErr, nil),
			})
			code, out, errOut := runCLI(t, f.socket, "", tt.args...)
			if code != tt.wantCode || out != tt.wantOut || errOut != tt.wantErr {
				t.Errorf("got code %d out %q err %q; want %d %q %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if got := f.request(t, "POST", "/1.0/instances").Body; got != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", got, tt.wantBody)
			}
			if got := f.request(t, "GET", "/1.0/operations/op1/wait?timeout=-1"); got.Method == "" {
				t.Error("operation not waited for")
			}
		})
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		inst      api.Instance
		wantCode  int
		wantErr   string
		wantCalls []string
	}{
		{
			name: "stopped", args: []string{"delete", "c1"}, inst: stoppedC1,
			wantCalls: []string{"GET /1.0/instances/c1", "DELETE /1.0/instances/c1", "GET /1.0/operations/del/wait?timeout=-1"},
		},
		{
			name: "running without force", args: []string{"delete", "c1"}, inst: runningC1, wantCode: 1,
			wantErr:   "Error: the instance is currently running, stop it first or pass --force\n",
			wantCalls: []string{"GET /1.0/instances/c1"},
		},
		{
			name: "running with force", args: []string{"delete", "-f", "c1"}, inst: runningC1,
			wantCalls: []string{"GET /1.0/instances/c1", "PUT /1.0/instances/c1/state", "GET /1.0/operations/stop/wait?timeout=-1",
				"DELETE /1.0/instances/c1", "GET /1.0/operations/del/wait?timeout=-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"GET /1.0/instances/c1":           fakeOK(tt.inst, `"e"`),
				"PUT /1.0/instances/c1/state":     fakeOp("stop", nil),
				"GET /1.0/operations/stop/wait":   fakeOpDone("stop", api.Success, "", nil),
				"DELETE /1.0/instances/c1":        fakeOp("del", nil),
				"GET /1.0/operations/del/wait":    fakeOpDone("del", api.Success, "", nil),
				"GET /1.0/instances/nope":         fakeFail(404, "Instance not found"),
				"GET /1.0/operations/other/wait":  fakeOpDone("other", api.Success, "", nil),
				"DELETE /1.0/instances/somewhere": fakeFail(500, "unused"),
			})
			code, _, errOut := runCLI(t, f.socket, "", tt.args...)
			if code != tt.wantCode || errOut != tt.wantErr {
				t.Errorf("code %d err %q; want %d %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantCalls, f.calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tt.name == "running with force" {
				if got := f.request(t, "PUT", "/1.0/instances/c1/state").Body; got != `{"action":"stop","timeout":-1,"force":true,"stateful":false}` {
					t.Errorf("stop body %s", got)
				}
			}
		})
	}
}

func TestDeleteSeveralReportsEachFailure(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/instances/c1":        fakeOK(stoppedC1, ""),
		"DELETE /1.0/instances/c1":     fakeOp("del", nil),
		"GET /1.0/operations/del/wait": fakeOpDone("del", api.Success, "", nil),
		"GET /1.0/instances/nope":      fakeFail(404, "Instance not found"),
	})
	code, _, errOut := runCLI(t, f.socket, "", "delete", "nope", "c1")
	if code != 1 || errOut != "Error: nope: Instance not found\n" {
		t.Errorf("code %d err %q", code, errOut)
	}
	f.request(t, "DELETE", "/1.0/instances/c1")
}

func TestStateCommands(t *testing.T) {
	tests := []struct {
		args     []string
		wantBody string
	}{
		{[]string{"start", "c1"}, `{"action":"start","timeout":-1,"force":false,"stateful":false}`},
		{[]string{"stop", "c1", "--force", "--timeout", "10"}, `{"action":"stop","timeout":10,"force":true,"stateful":false}`},
		{[]string{"restart", "c1", "-f"}, `{"action":"restart","timeout":-1,"force":true,"stateful":false}`},
		{[]string{"pause", "c1"}, `{"action":"freeze","timeout":-1,"force":false,"stateful":false}`},
		{[]string{"resume", "c1"}, `{"action":"unfreeze","timeout":-1,"force":false,"stateful":false}`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"PUT /1.0/instances/c1/state": fakeOp("s", nil),
				"GET /1.0/operations/s/wait":  fakeOpDone("s", api.Success, "", nil),
			})
			code, out, errOut := runCLI(t, f.socket, "", tt.args...)
			if code != 0 || out != "" || errOut != "" {
				t.Fatalf("code %d out %q err %q", code, out, errOut)
			}
			if got := f.request(t, "PUT", "/1.0/instances/c1/state").Body; got != tt.wantBody {
				t.Errorf("body %s, want %s", got, tt.wantBody)
			}
		})
	}
}

func TestStartSeveralWaitsForAll(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"PUT /1.0/instances/a/state": fakeOp("a", nil),
		"PUT /1.0/instances/b/state": fakeFail(400, "The instance is already running"),
		"PUT /1.0/instances/c/state": fakeOp("c", nil),
		"GET /1.0/operations/a/wait": fakeOpDone("a", api.Success, "", nil),
		"GET /1.0/operations/c/wait": fakeOpDone("c", api.Failure, "no init", nil),
	})
	code, _, errOut := runCLI(t, f.socket, "", "start", "a", "b", "c")
	if code != 1 || errOut != "Error: b: The instance is already running; c: no init\n" {
		t.Errorf("code %d err %q", code, errOut)
	}
}

func TestConfigCommands(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string
		wantErr  string
		wantPut  string // body of the PUT, "" = no PUT
	}{
		{
			name: "set key=value", args: []string{"config", "set", "c1", "limits.cpu=2", "user.new=1"},
			wantPut: `{"architecture":"","config":{"limits.cpu":"2","user.new":"1","user.x":"y"},"devices":null,"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`,
		},
		{
			name: "set key value", args: []string{"config", "set", "c1", "user.motd", "hello world"},
			wantPut: `{"architecture":"","config":{"limits.cpu":"1","user.motd":"hello world","user.x":"y"},"devices":null,"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`,
		},
		{
			name: "unset", args: []string{"config", "unset", "c1", "user.x"},
			wantPut: `{"architecture":"","config":{"limits.cpu":"1"},"devices":null,"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`,
		},
		{
			name: "unset missing", args: []string{"config", "unset", "c1", "user.nope"}, wantCode: 1,
			wantErr: "Error: can't unset key 'user.nope', it's not currently set\n",
		},
		{
			// The daemon keeps read-only keys a PUT leaves out: unsetting
			// one would be a silent no-op.
			name: "unset read-only", args: []string{"config", "unset", "c1", "volatile.base_image"}, wantCode: 1,
			wantErr: "Error: config key \"volatile.base_image\" is read-only\n",
		},
		{
			name: "set read-only to empty", args: []string{"config", "set", "c1", "user.a=1", "image.os="}, wantCode: 1,
			wantErr: "Error: config key \"image.os\" is read-only\n",
		},
		{name: "get", args: []string{"config", "get", "c1", "limits.cpu"}, wantOut: "1\n"},
		{name: "get unset", args: []string{"config", "get", "c1", "nope"}, wantOut: "\n"},
		{
			name: "show", args: []string{"config", "show", "c1"},
			wantOut: "architecture: \"\"\nconfig:\n  limits.cpu: \"1\"\n  user.x: \"y\"\ndevices: {}\nephemeral: false\n" +
				"profiles:\n  - default\nstateful: false\ndescription: \"\"\n",
		},
		{
			name: "edit from stdin", args: []string{"config", "edit", "c1"},
			stdin:   "config:\n  limits.memory: 1GiB\nprofiles: [default, big]\nname: ignored\n",
			wantPut: `{"architecture":"","config":{"limits.memory":"1GiB"},"devices":null,"ephemeral":false,"profiles":["default","big"],"stateful":false,"description":""}`,
		},
		{
			name: "edit with empty stdin", args: []string{"config", "edit", "c1"}, wantCode: 1,
			wantErr: "Error: no YAML on standard input (run from a terminal to use an editor)\n",
		},
		{
			name: "edit with bad yaml", args: []string{"config", "edit", "c1"}, stdin: "config: [\n", wantCode: 1,
			wantErr: "Error: parse YAML: yaml: line 1: did not find expected node content\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"GET /1.0/instances/c1":      fakeOK(runningC1, `"etag-1"`),
				"PUT /1.0/instances/c1":      fakeOp("u", nil),
				"GET /1.0/operations/u/wait": fakeOpDone("u", api.Success, "", nil),
			})
			code, out, errOut := runCLI(t, f.socket, tt.stdin, tt.args...)
			if code != tt.wantCode || out != tt.wantOut || errOut != tt.wantErr {
				t.Errorf("got code %d out %q err %q; want %d %q %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			var put *fakeRequest
			for _, r := range f.reqs {
				if r.Method == "PUT" {
					put = &r
				}
			}
			switch {
			case tt.wantPut == "" && put != nil:
				t.Errorf("unexpected PUT %s", put.Body)
			case tt.wantPut != "" && put == nil:
				t.Errorf("no PUT sent")
			case put != nil:
				if put.Body != tt.wantPut {
					t.Errorf("PUT body\n got %s\nwant %s", put.Body, tt.wantPut)
				}
				if put.IfMatch != `"etag-1"` {
					t.Errorf("If-Match %q", put.IfMatch)
				}
			}
		})
	}
}

func TestProfileAssign(t *testing.T) {
	tests := []struct {
		arg          string
		wantProfiles string
		wantOut      string
	}{
		{"default,big", `"profiles":["default","big"]`, "Profiles default,big applied to c1\n"},
		{"", `"profiles":[]`, "All profiles removed from c1\n"},
	}
	for _, tt := range tests {
		f := newFakeHangard(t, map[string]http.HandlerFunc{
			"GET /1.0/instances/c1":      fakeOK(stoppedC1, `"e"`),
			"PUT /1.0/instances/c1":      fakeOp("u", nil),
			"GET /1.0/operations/u/wait": fakeOpDone("u", api.Success, "", nil),
		})
		code, out, errOut := runCLI(t, f.socket, "", "profile", "assign", "c1", tt.arg)
		if code != 0 || out != tt.wantOut {
			t.Errorf("assign %q: code %d out %q err %q", tt.arg, code, out, errOut)
		}
		if body := f.request(t, "PUT", "/1.0/instances/c1").Body; !strings.Contains(body, tt.wantProfiles) {
			t.Errorf("assign %q: body %s", tt.arg, body)
		}
	}
}

func TestProfileCreateFromStdin(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{"POST /1.0/profiles": fakeOK(nil, "")})
	code, out, errOut := runCLI(t, f.socket, "description: Big\nconfig:\n  limits.cpu: \"4\"\n", "profile", "create", "big")
	if code != 0 || out != "Profile big created\n" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	want := `{"config":{"limits.cpu":"4"},"description":"Big","devices":null,"name":"big"}`
	if got := f.request(t, "POST", "/1.0/profiles").Body; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestListCommand(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/instances": fakeOK([]api.InstanceFull{runningInst, stoppedInst}, ""),
	})
	code, out, errOut := runCLI(t, f.socket, "", "list", "status=running", "--format", "csv")
	if code != 0 || errOut != "" {
		t.Fatalf("code %d err %q", code, errOut)
	}
	if want := "web1,RUNNING,\"10.0.3.50 (eth0)\n10.0.3.5 (eth0)\",fd42::5 (eth0),CONTAINER,0\n"; out != want {
		t.Errorf("out %q, want %q", out, want)
	}
	if diff := cmp.Diff([]string{"GET /1.0/instances?recursion=2"}, f.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// TestListFormats runs list in every format, with and without a filter,
// against a daemon answering in reverse name order: each output is the
// decoded listing's render (the yaml path without filters never decodes),
// and an error answer is an error in every format.
func TestListFormats(t *testing.T) {
	insts := []api.InstanceFull{runningInst, stoppedInst} // web1, db
	ok := newFakeHangard(t, map[string]http.HandlerFunc{"GET /1.0/instances": fakeOK(insts, "")})
	failing := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/instances": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(api.Response{Type: api.ErrorResponse, ErrorCode: 500, Error: "database is locked"})
		},
	})
	for _, format := range listFormats {
		for _, filters := range [][]string{nil, {"status=stopped"}} {
			t.Run(format+" "+strings.Join(filters, " "), func(t *testing.T) {
				kept := insts
				if filters != nil {
					kept = []api.InstanceFull{stoppedInst}
				}
				var want bytes.Buffer
				if err := instanceListing.render(&want, format, kept); err != nil {
					t.Fatal(err)
				}
				args := append([]string{"list", "--format", format}, filters...)
				code, out, errOut := runCLI(t, ok.socket, "", args...)
				if code != 0 || errOut != "" {
					t.Fatalf("code %d err %q", code, errOut)
				}
				if diff := cmp.Diff(want.String(), out); diff != "" {
					t.Errorf("output (-want +got):\n%s", diff)
				}
				code, out, errOut = runCLI(t, failing.socket, "", args...)
				if code != 1 || out != "" || !strings.Contains(errOut, "database is locked") {
					t.Errorf("failing daemon: code %d out %q err %q", code, out, errOut)
				}
			})
		}
	}
}

func TestImageImport(t *testing.T) {
	tarball := filepath.Join(t.TempDir(), "alpine.tar.gz")
	if err := os.WriteFile(tarball, []byte("tarball-bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"POST /1.0/images":             fakeOp("imp", nil),
		"GET /1.0/operations/imp/wait": fakeOpDone("imp", api.Success, "", map[string]any{"fingerprint": "abc123"}),
	})
	code, out, errOut := runCLI(t, f.socket, "", "image", "import", tarball, "--alias", "alpine", "--os", "Alpine", "--public")
	if code != 0 || out != "Image imported with fingerprint: abc123\n" {
		t.Fatalf("code %d out %q err %q", code, out, errOut)
	}
	r := f.request(t, "POST", "/1.0/images")
	if r.Body != "tarball-bytes" || r.Header.Get("X-Hangar-Alias") != "alpine" || r.Header.Get("X-LXD-filename") != "alpine.tar.gz" ||
		r.Header.Get("X-LXD-public") != "1" || r.Header.Get("X-LXD-properties") != "os=Alpine" {
		t.Errorf("upload request %+v", r)
	}
}

func TestImageDeleteResolvesAlias(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/images/aliases/alpine": fakeOK(api.ImageAliasesEntry{Name: "alpine", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: "abc123"}}, ""),
		"DELETE /1.0/images/abc123":      fakeOp("d", nil),
		"DELETE /1.0/images/ffee":        fakeOp("d", nil),
		"GET /1.0/operations/d/wait":     fakeOpDone("d", api.Success, "", nil),
	})
	code, _, errOut := runCLI(t, f.socket, "", "image", "delete", "alpine", "ffee")
	if code != 0 {
		t.Fatalf("code %d err %q", code, errOut)
	}
	want := []string{
		"GET /1.0/images/aliases/alpine", "DELETE /1.0/images/abc123", "GET /1.0/operations/d/wait?timeout=-1",
		"GET /1.0/images/aliases/ffee", "DELETE /1.0/images/ffee", "GET /1.0/operations/d/wait?timeout=-1",
	}
	if diff := cmp.Diff(want, f.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestConsoleShowLog(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/instances/c1/console": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "boot ok\n") },
	})
	code, out, _ := runCLI(t, f.socket, "", "console", "c1", "--show-log")
	if code != 0 || out != "boot ok\n" {
		t.Errorf("code %d out %q", code, out)
	}
}

func TestMonitor(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/events": func(w http.ResponseWriter, r *http.Request) {
			conn, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			for i := uint64(1); i <= 2; i++ {
				data, _ := json.Marshal(api.Event{Type: "lifecycle", Timestamp: t0, Sequence: 10 + i,
					Metadata: json.RawMessage(`{"action":"instance-started"}`)})
				conn.Write(r.Context(), websocket.MessageText, data)
			}
			conn.Close(websocket.StatusGoingAway, "shutting down")
		},
	})
	code, out, errOut := runCLI(t, f.socket, "", "monitor", "--type", "lifecycle", "--since", "10", "--format", "json")
	wantOut := `{"type":"lifecycle","timestamp":"2025-03-04T15:06:00Z","metadata":{"action":"instance-started"},"sequence":11}` + "\n" +
		`{"type":"lifecycle","timestamp":"2025-03-04T15:06:00Z","metadata":{"action":"instance-started"},"sequence":12}` + "\n"
	if out != wantOut {
		t.Errorf("out %q, want %q", out, wantOut)
	}
	if code != 1 || !strings.HasPrefix(errOut, "Error: event stream: ") {
		t.Errorf("code %d err %q: the daemon going away must be reported", code, errOut)
	}
	if got := f.calls(); len(got) != 1 || got[0] != "GET /1.0/events?since=10&type=lifecycle" {
		t.Errorf("calls %v", got)
	}
}

func TestDaemonErrorsAreOneLine(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"GET /1.0/instances/c1": fakeFail(500, "first line\nsecond line"),
	})
	code, _, errOut := runCLI(t, f.socket, "", "info", "c1")
	if code != 1 || errOut != "Error: first line second line\n" {
		t.Errorf("code %d err %q", code, errOut)
	}
}

func TestDaemonDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	code, _, errOut := runCLI(t, sock, "", "info", "c1")
	if code != 1 || !strings.HasPrefix(errOut, "Error: cannot connect to hangard at "+sock+" (is it running?)") ||
		strings.Count(errOut, "\n") != 1 {
		t.Errorf("code %d err %q", code, errOut)
	}
}

func TestOperationWaitCommand(t *testing.T) {
	tests := []struct {
		op       api.Operation
		wantCode int
		wantErr  string
	}{
		{api.Operation{ID: "o", StatusCode: api.Success}, 0, ""},
		{api.Operation{ID: "o", StatusCode: api.Failure, Err: "boom"}, 1, "Error: boom\n"},
		{api.Operation{ID: "o", StatusCode: api.Running, Status: "Running"}, 1, "Error: timed out waiting for operation o (status: Running)\n"},
	}
	for _, tt := range tests {
		f := newFakeHangard(t, map[string]http.HandlerFunc{"GET /1.0/operations/o/wait": fakeOK(tt.op, "")})
		code, _, errOut := runCLI(t, f.socket, "", "operation", "wait", "o", "--timeout", "3")
		if code != tt.wantCode || errOut != tt.wantErr {
			t.Errorf("%v: code %d err %q", tt.op.StatusCode, code, errOut)
		}
		f.request(t, "GET", "/1.0/operations/o/wait?timeout=3")
	}
}
