package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// The user commands send the password from standard input (one trailing
// newline dropped) in the body, never as an argument, and refuse to run
// without --password-stdin when standard input is not a terminal.
func TestUserCommands(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"POST /1.0/users":        fakeOK(map[string]any{}, ""),
		"PATCH /1.0/users/alice": fakeOK(map[string]any{}, ""),
		"GET /1.0/users/alice":   fakeOK(api.User{Name: "alice", Description: "ops", CreatedAt: time.Unix(1700000000, 0)}, "e1"),
		"DELETE /1.0/users/bob":  fakeFail(404, `user "bob" not found`),
	})
	for _, tc := range []struct {
		name      string
		stdin     string
		args      []string
		code      int
		out, err  string
		uri, body string // the request sent, when not ""
	}{
		{"create", "s3cret\n", []string{"user", "create", "alice", "--password-stdin", "--description", "ops"}, 0,
			"User alice created", "", "POST /1.0/users", `{"name":"alice","password":"s3cret","description":"ops"}`},
		{"create CRLF and inner spaces", "a b \r\n", []string{"user", "create", "alice", "--password-stdin"}, 0,
			"User alice created", "", "POST /1.0/users", `{"name":"alice","password":"a b ","description":""}`},
		{"create without a terminal", "s3cret\n", []string{"user", "create", "alice"}, 1,
			"", "standard input is not a terminal: give the password on it with --password-stdin", "", ""},
		{"password as an argument", "", []string{"user", "create", "alice", "s3cret"}, 1,
			"", "wrong number of arguments", "", ""},
		{"set-password", "n3w\n", []string{"user", "set-password", "alice", "--password-stdin"}, 0,
			"Password of user alice changed", "", "PATCH /1.0/users/alice", `{"password":"n3w"}`},
		{"set-password empty is sent", "\n", []string{"user", "passwd", "alice", "--password-stdin"}, 0,
			"", "", "PATCH /1.0/users/alice", `{"password":""}`},
		{"show", "", []string{"user", "show", "alice"}, 0, "name: alice\ndescription: ops\n", "", "", ""},
		{"delete unknown", "", []string{"user", "delete", "bob"}, 1, "", `user "bob" not found`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.calls())
			code, out, errOut := runCLI(t, f.socket, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("exit %d, out %q, err %q; want %d, %q, %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
			if tc.uri == "" {
				return
			}
			f.mu.Lock()
			sent := f.reqs[before:]
			f.mu.Unlock()
			if len(sent) != 1 || sent[0].Method+" "+sent[0].URI != tc.uri || sent[0].Body != tc.body {
				t.Fatalf("sent %+v, want one %s %s", sent, tc.uri, tc.body)
			}
		})
	}
}
