package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsers drives local users (hangar_users) through the CLI against a
// real hangard: a password given on standard input, never shown again
// nor stored in the clear; membership of an auth group as user/NAME; a
// delete that takes the user out of its groups, so a new user of the
// same name inherits nothing; bad input refused with a clear error and
// exit code 1.
func TestUsers(t *testing.T) {
	requireE2E(t)
	d := startDaemon(t, "")
	const (
		password  = "first-Secret-4711"
		password2 = "second-Secret-0815"
	)
	// hangarIn runs the CLI with stdin as its standard input.
	hangarIn := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(filepath.Join(binDir, "hangar"), append([]string{"--socket", d.socket}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		code := 0
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatalf("run hangar %v: %v", args, err)
		}
		return o.String(), e.String(), code
	}
	noSecret := func(what, text string) {
		t.Helper()
		for _, s := range []string{password, password2, "pbkdf2", "password_hash"} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows %q:\n%s", what, s, text)
			}
		}
	}

	t.Run("create list show", func(t *testing.T) {
		out, errOut, code := hangarIn(password+"\n", "user", "create", "alice", "--password-stdin", "--description", "ops lead")
		if code != 0 || !strings.Contains(out, "User alice created") {
			t.Fatalf("create: exit %d, %q %q", code, out, errOut)
		}
		out = d.must("user", "list")
		if !strings.Contains(out, "alice") || !strings.Contains(out, "ops lead") {
			t.Errorf("list:\n%s", out)
		}
		noSecret("list", out)
		out = d.must("user", "list", "--format", "json")
		if !strings.Contains(out, `"name":"alice"`) {
			t.Errorf("list json:\n%s", out)
		}
		noSecret("list json", out)
		out = d.must("user", "show", "alice")
		if !strings.Contains(out, "name: alice") || !strings.Contains(out, "description: ops lead") || !strings.Contains(out, "created_at:") {
			t.Errorf("show:\n%s", out)
		}
		noSecret("show", out)
	})

	t.Run("set-password", func(t *testing.T) {
		out, errOut, code := hangarIn(password2+"\n", "user", "set-password", "alice", "--password-stdin")
		if code != 0 || !strings.Contains(out, "Password of user alice changed") {
			t.Fatalf("set-password: exit %d, %q %q", code, out, errOut)
		}
	})

	t.Run("group membership", func(t *testing.T) {
		d.must("auth", "group", "create", "viewers")
		d.must("auth", "group", "permission", "add", "viewers", "project", "default", "can_view")
		d.must("auth", "identity", "group", "add", "user/alice", "viewers")
		out := d.must("auth", "group", "show", "viewers")
		if !strings.Contains(out, "user:") || !strings.Contains(out, "- alice") {
			t.Fatalf("group show:\n%s", out)
		}
		if _, errOut, code := d.hangar("auth", "identity", "group", "add", "user/alice", "viewers"); code != 1 || !strings.Contains(errOut, "user/alice is in group viewers already") {
			t.Errorf("add twice: exit %d, %q", code, errOut)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			stdin string
			args  []string
			err   string
		}{
			{"bad name", "pw\n", []string{"user", "create", "a/b", "--password-stdin"}, `invalid user name "a/b"`},
			{"name too long", "pw\n", []string{"user", "create", strings.Repeat("x", 65), "--password-stdin"}, "at most 64"},
			{"empty password", "\n", []string{"user", "create", "bob", "--password-stdin"}, "the password is empty"},
			{"no password input", "", []string{"user", "create", "bob", "--password-stdin"}, "the password is empty"},
			{"duplicate", "pw\n", []string{"user", "create", "alice", "--password-stdin"}, `user "alice" already exists`},
			{"no terminal, no --password-stdin", "pw\n", []string{"user", "create", "bob"}, "give the password on it with --password-stdin"},
			{"password as argument", "", []string{"user", "create", "bob", password}, "wrong number of arguments"},
			{"empty new password", "\n", []string{"user", "set-password", "alice", "--password-stdin"}, "the password is empty"},
			{"unknown user password", "pw\n", []string{"user", "set-password", "nobody", "--password-stdin"}, `user "nobody" not found`},
			{"unknown user show", "", []string{"user", "show", "nobody"}, `user "nobody" not found`},
			{"unknown method", "", []string{"auth", "identity", "group", "add", "oidc/alice", "viewers"}, `unknown authentication method "oidc"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, errOut, code := hangarIn(tc.stdin, tc.args...)
				if code != 1 || !strings.Contains(errOut, tc.err) {
					t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, tc.err)
				}
			})
		}
		if _, _, code := d.hangar("user", "show", "bob"); code != 1 {
			t.Errorf("a refused create left bob behind")
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := d.must("user", "delete", "alice"); !strings.Contains(out, "User alice deleted") {
			t.Errorf("delete: %q", out)
		}
		if out := d.must("auth", "group", "show", "viewers"); strings.Contains(out, "alice") {
			t.Fatalf("the group still names the deleted user:\n%s", out)
		}
		// A new alice starts in no group.
		if _, errOut, code := hangarIn(password+"\n", "user", "create", "alice", "--password-stdin"); code != 0 {
			t.Fatalf("create again: exit %d, %q", code, errOut)
		}
		if out := d.must("auth", "group", "show", "viewers"); strings.Contains(out, "alice") {
			t.Fatalf("the new alice inherits the group:\n%s", out)
		}
		d.must("user", "delete", "alice")
		if _, errOut, code := d.hangar("user", "delete", "alice"); code != 1 || !strings.Contains(errOut, `user "alice" not found`) {
			t.Errorf("delete twice: exit %d, %q", code, errOut)
		}
		if out := d.must("user", "list", "--format", "csv"); strings.Contains(out, "alice") {
			t.Errorf("list after delete:\n%s", out)
		}
	})

	// Passwords are kept only as hashes: not in the database, its WAL, nor
	// the daemon's debug log.
	for _, f := range []string{"hangar.db", "hangar.db-wal"} {
		b, err := os.ReadFile(filepath.Join(d.dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, pw := range []string{password, password2} {
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s holds a password in the clear", f)
			}
		}
	}
	log := d.logText()
	for _, pw := range []string{password, password2} {
		if strings.Contains(log, pw) {
			t.Errorf("the daemon's log holds a password")
		}
	}
}
