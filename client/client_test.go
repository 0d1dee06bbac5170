package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

// fakeDaemon serves handler on a unix socket and returns a Client for it.
func fakeDaemon(t testing.TB, handler http.Handler) *Client {
	t.Helper()
	// Unix socket paths are limited to ~108 bytes: t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := Connect(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// fakeSync writes a sync envelope.
func fakeSync(w http.ResponseWriter, metadata any, etag string) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	md, _ := json.Marshal(metadata)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(api.Response{Type: api.SyncResponse, Status: "Success", StatusCode: 200, Metadata: md})
}

// fakeError writes an error envelope.
func fakeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Response{Type: api.ErrorResponse, ErrorCode: code, Error: msg})
}

// fakeAsync writes an async envelope for op.
func fakeAsync(w http.ResponseWriter, op api.Operation) {
	md, _ := json.Marshal(op)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(api.Response{
		Type: api.AsyncResponse, Status: "Operation created", StatusCode: 100,
		Operation: "/1.0/operations/" + op.ID, Metadata: md,
	})
}

func TestDefaultSocket(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"", DefaultSocketPath},
		{"/run/h.sock", "/run/h.sock"},
	}
	for _, tt := range tests {
		t.Setenv(SocketEnv, tt.env)
		if got := DefaultSocket(); got != tt.want {
			t.Errorf("DefaultSocket() with %s=%q = %q, want %q", SocketEnv, tt.env, got, tt.want)
		}
		c, err := Connect("")
		if err != nil {
			t.Fatal(err)
		}
		if c.SocketPath() != tt.want {
			t.Errorf("Connect(\"\").SocketPath() = %q, want %q", c.SocketPath(), tt.want)
		}
	}
	c, _ := Connect("/explicit")
	if c.SocketPath() != "/explicit" {
		t.Errorf("explicit socket ignored: %q", c.SocketPath())
	}
}

func TestQueryEnvelopes(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantType   api.ResponseType
		wantETag   string
		wantMD     string
		wantStatus int    // of *Error; 0 = no *Error
		wantMsg    string // error message
	}{
		{
			name:     "sync",
			handler:  func(w http.ResponseWriter, r *http.Request) { fakeSync(w, map[string]int{"a": 1}, `"abc"`) },
			wantType: api.SyncResponse, wantETag: `"abc"`, wantMD: `{"a":1}`,
		},
		{
			name:       "error envelope",
			handler:    func(w http.ResponseWriter, r *http.Request) { fakeError(w, 404, "Instance not found") },
			wantStatus: 404, wantMsg: "Instance not found",
		},
		{
			name: "error envelope without code uses HTTP status",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(409)
				io.WriteString(w, `{"type":"error","error":"busy"}`)
			},
			wantStatus: 409, wantMsg: "busy",
		},
		{
			name:       "plain text error",
			handler:    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "404 page not found", 404) },
			wantStatus: 404, wantMsg: "404 page not found",
		},
		{
			name:       "empty error body",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			wantStatus: 500, wantMsg: "Internal Server Error",
		},
		{
			name:    "garbage 200",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
			wantMsg: "invalid response from hangard (HTTP 200): invalid character 'h' looking for beginning of value",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeDaemon(t, tt.handler)
			r, etag, err := c.Query(context.Background(), "GET", "/1.0/x", nil, "")
			if tt.wantMsg != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantMsg)
				}
				if err.Error() != tt.wantMsg {
					t.Errorf("error %q, want %q", err, tt.wantMsg)
				}
				if got := StatusCodeOf(err); got != tt.wantStatus {
					t.Errorf("StatusCodeOf = %d, want %d", got, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != tt.wantType || etag != tt.wantETag || string(r.Metadata) != tt.wantMD {
				t.Errorf("got type %q etag %q md %s", r.Type, etag, r.Metadata)
			}
		})
	}
}

func TestErrorHelpers(t *testing.T) {
	tests := []struct {
		code int
		is   func(error) bool
	}{
		{404, IsNotFound},
		{409, IsConflict},
		{412, IsPreconditionFailed},
		{400, IsBadRequest},
		{501, IsNotImplemented},
	}
	for _, tt := range tests {
		err := fmtWrap(&Error{StatusCode: tt.code, Message: "x"})
		if !tt.is(err) {
			t.Errorf("helper for %d false on wrapped error", tt.code)
		}
		if tt.is(&Error{StatusCode: 200}) || tt.is(errors.New("x")) {
			t.Errorf("helper for %d true on other error", tt.code)
		}
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("ctx"), err) }

func TestConnectErrorWhenDaemonDown(t *testing.T) {
	c, _ := Connect(filepath.Join(t.TempDir(), "nope.sock"))
	_, _, err := c.GetServer(context.Background())
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want *ConnectError", err, err)
	}
	if !strings.Contains(err.Error(), "cannot connect to hangard at ") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("unhelpful message: %q", err)
	}
}

// TestRequests checks method, path, query, If-Match and body of typed calls.
func TestRequests(t *testing.T) {
	type seen struct {
		method, uri, ifMatch, body, contentType string
	}
	tests := []struct {
		name string
		call func(c *Client) error
		want seen
	}{
		{
			name: "update instance sends If-Match",
			call: func(c *Client) error {
				op, err := c.UpdateInstance(context.Background(), "c1", api.InstancePut{Config: map[string]string{"k": "v"}}, `"e1"`)
				if err != nil {
					return err
				}
				return op.Wait(context.Background())
			},
			want: seen{method: "PUT", uri: "/1.0/instances/c1", ifMatch: `"e1"`, contentType: "application/json",
				body: `{"architecture":"","config":{"k":"v"},"devices":null,"ephemeral":false,"profiles":null,"stateful":false,"description":""}`},
		},
		{
			name: "no etag no If-Match",
			call: func(c *Client) error {
				return c.UpdateProfile(context.Background(), "p", api.ProfilePut{}, "")
			},
			want: seen{method: "PUT", uri: "/1.0/profiles/p", contentType: "application/json",
				body: `{"config":null,"description":"","devices":null}`},
		},
		{
			name: "project on every request",
			call: func(c *Client) error {
				_, err := c.UseProject("p 1").GetInstancesFull(context.Background(), "")
				return err
			},
			want: seen{method: "GET", uri: "/1.0/instances?recursion=2&project=p+1"},
		},
		{
			name: "project without a query",
			call: func(c *Client) error {
				return c.UseProject("p1").DeleteProfile(context.Background(), "x")
			},
			want: seen{method: "DELETE", uri: "/1.0/profiles/x?project=p1"},
		},
		{
			name: "create nested project",
			call: func(c *Client) error {
				parent := "top"
				return c.CreateProject(context.Background(), api.ProjectsPost{Name: "kid", ProjectPut: api.ProjectPut{Parent: &parent}})
			},
			want: seen{method: "POST", uri: "/1.0/projects", contentType: "application/json",
				body: `{"config":null,"description":"","parent":"top","name":"kid"}`},
		},
		{
			name: "update project keeps lxc's shape",
			call: func(c *Client) error {
				return c.UpdateProject(context.Background(), "p1", api.ProjectPut{Config: map[string]string{"limits.cpu": "2"}}, `"e3"`)
			},
			want: seen{method: "PUT", uri: "/1.0/projects/p1", ifMatch: `"e3"`, contentType: "application/json",
				body: `{"config":{"limits.cpu":"2"},"description":""}`},
		},
		{
			name: "patch instance",
			call: func(c *Client) error {
				return c.PatchInstance(context.Background(), "c1", map[string]any{"config": map[string]string{"a": "b"}}, `"e2"`)
			},
			want: seen{method: "PATCH", uri: "/1.0/instances/c1", ifMatch: `"e2"`, contentType: "application/json", body: `{"config":{"a":"b"}}`},
		},
		{
			name: "full listing passes filter",
			call: func(c *Client) error {
				_, err := c.GetInstancesFull(context.Background(), "status eq Running")
				return err
			},
			want: seen{method: "GET", uri: "/1.0/instances?filter=status+eq+Running&recursion=2"},
		},
		{
			name: "full listing without filter",
			call: func(c *Client) error {
				_, err := c.GetInstancesFull(context.Background(), "")
				return err
			},
			want: seen{method: "GET", uri: "/1.0/instances?recursion=2"},
		},
		{
			name: "rename instance",
			call: func(c *Client) error {
				_, err := c.RenameInstance(context.Background(), "a", "b")
				return err
			},
			want: seen{method: "POST", uri: "/1.0/instances/a", contentType: "application/json", body: `{"name":"b","migration":false,"live":false}`},
		},
		{
			name: "state change",
			call: func(c *Client) error {
				_, err := c.UpdateInstanceState(context.Background(), "a", api.InstanceStatePut{Action: "stop", Timeout: -1, Force: true})
				return err
			},
			want: seen{method: "PUT", uri: "/1.0/instances/a/state", contentType: "application/json", body: `{"action":"stop","timeout":-1,"force":true,"stateful":false}`},
		},
		{
			name: "alias names are escaped",
			call: func(c *Client) error {
				return c.DeleteImageAlias(context.Background(), "ubuntu/24.04")
			},
			want: seen{method: "DELETE", uri: "/1.0/images/aliases/ubuntu%2F24.04"},
		},
		{
			name: "delete image",
			call: func(c *Client) error {
				_, err := c.DeleteImage(context.Background(), "abc")
				return err
			},
			want: seen{method: "DELETE", uri: "/1.0/images/abc"},
		},
		{
			name: "cancel operation",
			call: func(c *Client) error { return c.CancelOperation(context.Background(), "u1") },
			want: seen{method: "DELETE", uri: "/1.0/operations/u1"},
		},
		{
			name: "wait operation with timeout",
			call: func(c *Client) error {
				_, err := c.WaitOperation(context.Background(), "u1", 5)
				return err
			},
			want: seen{method: "GET", uri: "/1.0/operations/u1/wait?timeout=5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got seen
			c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = seen{r.Method, r.URL.RequestURI(), r.Header.Get("If-Match"), strings.TrimSpace(string(b)), r.Header.Get("Content-Type")}
				if r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/1.0/instances") {
					fakeSync(w, []any{}, "")
					return
				}
				fakeSync(w, nil, "")
			}))
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(seen{})); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOperationWait(t *testing.T) {
	tests := []struct {
		name      string
		final     api.Operation
		wantErr   string
		cancelled bool
	}{
		{name: "success", final: api.Operation{StatusCode: api.Success, Status: "Success"}},
		{name: "failure", final: api.Operation{StatusCode: api.Failure, Status: "Failure", Err: "Failed to start: boom"}, wantErr: "Failed to start: boom"},
		{name: "failure without message", final: api.Operation{StatusCode: api.Failure}, wantErr: "Operation failed"},
		{name: "cancelled", final: api.Operation{StatusCode: api.Cancelled, Status: "Cancelled"}, wantErr: "Operation cancelled", cancelled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waitURI string
			var body api.InstancesPost
			c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == "POST" && r.URL.Path == "/1.0/instances":
					json.NewDecoder(r.Body).Decode(&body)
					fakeAsync(w, api.Operation{ID: "op-1", StatusCode: api.Running, Status: "Running",
						Resources: map[string][]string{"instances": {"/1.0/instances/brave-fox"}}})
				case r.URL.Path == "/1.0/operations/op-1/wait":
					waitURI = r.URL.RequestURI()
					final := tt.final
					final.ID = "op-1"
					final.Resources = map[string][]string{"instances": {"/1.0/instances/brave-fox"}}
					fakeSync(w, final, "")
				default:
					fakeError(w, 404, "not found")
				}
			}))
			op, err := c.CreateInstance(context.Background(), api.InstancesPost{Source: api.InstanceSource{Type: "image", Alias: "alpine"}, Start: true})
			if err != nil {
				t.Fatal(err)
			}
			if op.ID() != "op-1" {
				t.Errorf("ID = %q", op.ID())
			}
			if got := OperationInstanceNames(op.Get()); !cmp.Equal(got, []string{"brave-fox"}) {
				t.Errorf("instance names %v", got)
			}
			err = op.Wait(context.Background())
			if waitURI != "/1.0/operations/op-1/wait?timeout=-1" {
				t.Errorf("wait request %q", waitURI)
			}
			if body.Source.Alias != "alpine" || !body.Start {
				t.Errorf("create body %+v", body)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Wait: %v", err)
				}
			} else if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Wait error %v, want %q", err, tt.wantErr)
			}
			if IsOperationCancelled(err) != tt.cancelled {
				t.Errorf("IsOperationCancelled = %v", !tt.cancelled)
			}
			if op.Get().StatusCode != tt.final.StatusCode {
				t.Errorf("Get after Wait: %v", op.Get().StatusCode)
			}
			// A finished operation is not waited on again.
			waitURI = ""
			op.Wait(context.Background())
			if waitURI != "" {
				t.Error("second Wait made a request")
			}
		})
	}
}

func TestOperationWaitRepollsAndHonoursContext(t *testing.T) {
	var mu sync.Mutex
	polls := 0
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/1.0/instances/c1":
			fakeAsync(w, api.Operation{ID: "op-2", StatusCode: api.Running})
		case "/1.0/operations/op-2/wait":
			mu.Lock()
			polls++
			n := polls
			mu.Unlock()
			if n < 2 {
				// A daemon that caps its long poll answers "still running".
				fakeSync(w, api.Operation{ID: "op-2", StatusCode: api.Running}, "")
				return
			}
			fakeSync(w, api.Operation{ID: "op-2", StatusCode: api.Success}, "")
		}
	}))
	op, err := c.DeleteInstance(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if polls != 2 {
		t.Errorf("polls = %d, want 2", polls)
	}

	block := make(chan struct{})
	defer close(block)
	c2 := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1.0/instances/c1" {
			fakeAsync(w, api.Operation{ID: "op-3", StatusCode: api.Running})
			return
		}
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	op, err = c2.DeleteInstance(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := op.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait error %v, want deadline exceeded", err)
	}
}

func TestSyncAnswerToAsyncEndpoint(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fakeSync(w, map[string]string{"fingerprint": "abc"}, "")
	}))
	op, err := c.CreateImageFromFile(context.Background(), strings.NewReader("x"), ImageImportArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fp := ImportedFingerprint(op.Get()); fp != "abc" {
		t.Errorf("fingerprint %q", fp)
	}
}

func TestSyncEndpointAnsweredAsyncIsWaited(t *testing.T) {
	waited := false
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1.0/operations/op-4/wait" {
			waited = true
			fakeSync(w, api.Operation{ID: "op-4", StatusCode: api.Failure, Err: "in use"}, "")
			return
		}
		fakeAsync(w, api.Operation{ID: "op-4", StatusCode: api.Running})
	}))
	err := c.DeleteProfile(context.Background(), "p")
	if !waited || err == nil || err.Error() != "in use" {
		t.Fatalf("waited=%v err=%v", waited, err)
	}
}

func TestGetOperationsFlattens(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RequestURI() != "/1.0/operations?recursion=1" {
			fakeError(w, 400, "bad uri "+r.URL.RequestURI())
			return
		}
		fakeSync(w, map[string][]api.Operation{
			"running": {{ID: "b", CreatedAt: t0.Add(2 * time.Second)}},
			"success": {{ID: "a", CreatedAt: t0}, {ID: "c", CreatedAt: t0.Add(time.Second)}},
		}, "")
	}))
	ops, err := c.GetOperations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, op := range ops {
		ids = append(ids, op.ID)
	}
	if !cmp.Equal(ids, []string{"a", "c", "b"}) {
		t.Errorf("ids %v, want oldest first", ids)
	}
}

func TestNameListings(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/1.0/instances":
			fakeSync(w, []string{"/1.0/instances/a", "/1.0/instances/b%20c"}, "")
		case "/1.0/images/aliases":
			fakeSync(w, []string{"/1.0/images/aliases/ubuntu%2F24.04"}, "")
		case "/1.0/profiles":
			fakeSync(w, []string{"/1.0/profiles/default?project=default"}, "")
		}
	}))
	ctx := context.Background()
	names, err := c.GetInstanceNames(ctx)
	if err != nil || !cmp.Equal(names, []string{"a", "b c"}) {
		t.Errorf("instances %v %v", names, err)
	}
	aliases, err := c.GetImageAliasNames(ctx)
	if err != nil || !cmp.Equal(aliases, []string{"ubuntu/24.04"}) {
		t.Errorf("aliases %v %v", aliases, err)
	}
	profiles, err := c.GetProfileNames(ctx)
	if err != nil || !cmp.Equal(profiles, []string{"default"}) {
		t.Errorf("profiles %v %v", profiles, err)
	}
}

func TestGetWithETag(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fakeSync(w, api.Instance{Name: "c1", Status: "Running", InstancePut: api.InstancePut{Profiles: []string{"default"}}}, `"tag"`)
	}))
	inst, etag, err := c.GetInstance(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if inst.Name != "c1" || inst.Status != "Running" || etag != `"tag"` || inst.Profiles[0] != "default" {
		t.Errorf("got %+v etag %q", inst, etag)
	}
}

func TestCreateImageFromFile(t *testing.T) {
	dir := t.TempDir()
	tarball := filepath.Join(dir, "img.tar.gz")
	content := strings.Repeat("image-bytes", 1000)
	if err := os.WriteFile(tarball, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		gotHeader http.Header
		gotBody   string
		gotLen    int64
	)
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1.0/images" {
			gotHeader = r.Header.Clone()
			b, _ := io.ReadAll(r.Body)
			gotBody = string(b)
			gotLen = r.ContentLength
			fakeAsync(w, api.Operation{ID: "up", StatusCode: api.Running})
			return
		}
		fakeSync(w, api.Operation{ID: "up", StatusCode: api.Success, Metadata: map[string]any{"fingerprint": "f00d", "size": 11000}}, "")
	}))
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	op, err := c.CreateImageFromFile(context.Background(), f, ImageImportArgs{
		Alias: "alpine", OS: "Alpine", Release: "3.20", Architecture: "x86_64", Description: "Alpine 3.20 & co",
		Filename: "img.tar.gz", Public: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ImportedFingerprint(op.Get()) != "f00d" {
		t.Errorf("fingerprint %q", ImportedFingerprint(op.Get()))
	}
	if gotBody != content || gotLen != int64(len(content)) {
		t.Errorf("body len %d content-length %d, want %d", len(gotBody), gotLen, len(content))
	}
	want := map[string]string{
		"Content-Type":     "application/octet-stream",
		"X-Lxd-Filename":   "img.tar.gz",
		"X-Lxd-Public":     "1",
		"X-Lxd-Properties": "architecture=x86_64&description=Alpine+3.20+%26+co&os=Alpine&release=3.20",
		"X-Hangar-Alias":   "alpine",
	}
	for k, v := range want {
		if got := gotHeader.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestConsoleLog(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1.0/instances/c1/console" {
			w.Header().Set("Content-Type", "application/octet-stream")
			io.WriteString(w, "booting...\nlogin:")
			return
		}
		fakeError(w, 404, "Instance not found")
	}))
	log, err := c.GetInstanceConsoleLog(context.Background(), "c1")
	if err != nil || string(log) != "booting...\nlogin:" {
		t.Errorf("log %q err %v", log, err)
	}
	_, err = c.GetInstanceConsoleLog(context.Background(), "nope")
	if !IsNotFound(err) || err.Error() != "Instance not found" {
		t.Errorf("err %v", err)
	}
}

// TestQueryStructOnePass covers the envelopes queryStruct decodes with its
// target in one pass, and those it falls back on the envelope for.
func TestQueryStructOnePass(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		status  int
		start   []string // the target before the call
		want    []string
		wantErr string
	}{
		{name: "sync", body: `{"type":"sync","status":"Success","status_code":200,"metadata":["a","b"]}`,
			status: 200, want: []string{"a", "b"}},
		{name: "sync, metadata first", body: `{"metadata":["a"],"type":"sync"}`, status: 200, want: []string{"a"}},
		{name: "sync null leaves the target", body: `{"type":"sync","metadata":null}`, status: 200,
			start: []string{"kept"}, want: []string{"kept"}},
		{name: "sync without metadata", body: `{"type":"sync"}`, status: 200},
		{name: "sync of the wrong shape", body: `{"type":"sync","metadata":{"a":1}}`, status: 200,
			wantErr: "GET /x: decode response metadata: json: cannot unmarshal object into Go value of type []string"},
		{name: "error envelope", body: `{"type":"error","error_code":404,"error":"not found","metadata":["x"]}`,
			status: 404, wantErr: "not found"},
		{name: "error envelope with 200", body: `{"type":"error","error_code":500,"error":"boom","metadata":["x"]}`,
			status: 200, wantErr: "boom"},
		{name: "not json", body: `<html>`, status: 200,
			wantErr: "invalid response from hangard (HTTP 200): invalid character '<' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			got := tt.start
			_, err := c.queryStruct(context.Background(), http.MethodGet, "/x", nil, "", &got)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("target %q, want %q", got, tt.want)
			}
		})
	}
}

// TestQueryStructAsyncZeroesTarget: an operation answered to a GET is
// waited for, and the target, which the one-pass decode may have touched,
// is left empty.
func TestQueryStructAsyncZeroesTarget(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1.0/operations/op-5/wait" {
			fakeSync(w, api.Operation{ID: "op-5", StatusCode: api.Success}, "")
			return
		}
		fakeAsync(w, api.Operation{ID: "op-5", StatusCode: api.Running, Description: "d"})
	}))
	var got api.Operation
	if _, err := c.queryStruct(context.Background(), http.MethodGet, "/x", nil, "", &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "" || got.Description != "" {
		t.Errorf("target %+v, want it empty", got)
	}
}
