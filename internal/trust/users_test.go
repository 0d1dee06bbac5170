package trust

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// newUsers returns a user service over a real store and Authorizer, with
// a low PBKDF2 count: the scheme is what is tested, not the work factor
// (BenchmarkLogin measures that).
func newUsers(t testing.TB) (*Users, *store.Store, *auth.Authorizer, *clock) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authz := auth.New(st)
	clk := &clock{t: time.Now()}
	u := &Users{DB: st, Groups: authz, Now: clk.now, Log: slog.New(slog.DiscardHandler), iterations: 1000}
	return u, st, authz, clk
}

func TestUserCreate(t *testing.T) {
	ctx := context.Background()
	u, st, _, _ := newUsers(t)
	if _, err := u.Create(ctx, "alice", "pw", "first"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		kind                 error
		msg                  string
	}{
		{"ok", "bob.b-2_x", "s3cret", nil, ""},
		{"digits", "007", "x", nil, ""},
		{"max length", strings.Repeat("a", 64), "x", nil, ""},
		{"duplicate", "alice", "other", errdefs.ErrConflict, `user "alice" already exists`},
		{"empty name", "", "x", errdefs.ErrInvalidArgument, `invalid user name ""`},
		{"too long", strings.Repeat("a", 65), "x", errdefs.ErrInvalidArgument, "at most 64"},
		{"slash", "a/b", "x", errdefs.ErrInvalidArgument, `invalid user name "a/b"`},
		{"space", "a b", "x", errdefs.ErrInvalidArgument, "invalid user name"},
		{"leading dot", ".a", "x", errdefs.ErrInvalidArgument, "invalid user name"},
		{"leading dash", "-a", "x", errdefs.ErrInvalidArgument, "invalid user name"},
		{"unicode", "ålice", "x", errdefs.ErrInvalidArgument, "invalid user name"},
		{"empty password", "carol", "", errdefs.ErrInvalidArgument, "the password is empty"},
		{"huge password", "carol", strings.Repeat("x", maxPasswordLen+1), errdefs.ErrInvalidArgument, "longer than 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := u.Create(ctx, tc.user, tc.password, "d")
			wantErr(t, err, tc.kind, tc.msg)
			if err != nil {
				return
			}
			if got.Name != tc.user || got.Description != "d" || got.CreatedAt.IsZero() {
				t.Fatalf("created %+v", got)
			}
			rec, err := st.GetUser(ctx, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := verifyPassword(rec.PasswordHash, tc.password); !ok || err != nil {
				t.Fatalf("stored %q: not a hash of the password (%v)", rec.PasswordHash, err)
			}
		})
	}
	// A failed create left nothing: carol does not exist.
	if _, err := u.Get(ctx, "carol"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get carol: %v, want not found", err)
	}
	list, err := u.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range list {
		names = append(names, x.Name)
	}
	if got, want := strings.Join(names, ","), "007,"+strings.Repeat("a", 64)+",alice,bob.b-2_x"; got != want {
		t.Fatalf("list %s, want %s", got, want)
	}
	// The duplicate kept alice's own password.
	if _, err := u.Login(ctx, "alice", "pw", "192.0.2.9:1"); err != nil {
		t.Fatalf("alice after a duplicate create: %v", err)
	}
}

func TestUserLogin(t *testing.T) {
	ctx := context.Background()
	u, _, _, clk := newUsers(t)
	if _, err := u.Create(ctx, "alice", "correct horse", ""); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name, user, password string
		ok                   bool
	}{
		{"ok", "alice", "correct horse", true},
		{"wrong password", "alice", "correct horsE", false},
		{"prefix of the password", "alice", "correct", false},
		{"empty password", "alice", "", false},
		{"unknown user", "bob", "correct horse", false},
		{"bad name", "a/b", "correct horse", false},
		{"name case", "Alice", "correct horse", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One source per case: the limiter is tested below.
			id, err := u.Login(ctx, tc.user, tc.password, fmt.Sprintf("192.0.2.%d:4000", i+1))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if want := (auth.Identity{Kind: auth.KindUser, Name: "alice"}); id.Kind != want.Kind || id.Name != want.Name || len(id.Groups) != 0 || id.Restricted {
					t.Fatalf("identity %+v, want %+v", id, want)
				}
				return
			}
			if !errors.Is(err, ErrBadCredentials) || !errors.Is(err, errdefs.ErrForbidden) {
				t.Fatalf("err %v, want ErrBadCredentials", err)
			}
			// The same words whether the name exists or not.
			if err.Error() != "invalid username or password" {
				t.Fatalf("err %q tells more than bad credentials", err)
			}
			if id.Kind != "" || id.Name != "" {
				t.Fatalf("a failed login returned %+v", id)
			}
		})
	}

	t.Run("password change", func(t *testing.T) {
		if err := u.SetPassword(ctx, "alice", "battery staple"); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Minute)
		if _, err := u.Login(ctx, "alice", "correct horse", "198.51.100.1:1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("old password: %v", err)
		}
		if _, err := u.Login(ctx, "alice", "battery staple", "198.51.100.1:1"); err != nil {
			t.Fatalf("new password: %v", err)
		}
		wantErr(t, u.SetPassword(ctx, "alice", ""), errdefs.ErrInvalidArgument, "the password is empty")
		wantErr(t, u.SetPassword(ctx, "nobody", "x"), errdefs.ErrNotFound, `user "nobody" not found`)
		if _, err := u.Login(ctx, "alice", "battery staple", "198.51.100.1:1"); err != nil {
			t.Fatalf("a refused change changed the password: %v", err)
		}
	})

	t.Run("description", func(t *testing.T) {
		d := "ops lead"
		if err := u.Update(ctx, "alice", UserUpdate{Description: &d}); err != nil {
			t.Fatal(err)
		}
		got, err := u.Get(ctx, "alice")
		if err != nil || got.Description != d {
			t.Fatalf("get: %+v, %v", got, err)
		}
		if _, err := u.Login(ctx, "alice", "battery staple", "198.51.100.2:1"); err != nil {
			t.Fatalf("a description change touched the password: %v", err)
		}
	})
}

// An unknown name is checked against a dummy hash of the same work as a
// real one: same scheme, iteration count and key size, so Login costs
// the same either way (BenchmarkLogin shows it) and no password matches.
func TestUserLoginDummyHash(t *testing.T) {
	u, _, _, _ := newUsers(t)
	u.init()
	real, err := u.hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	ri, rs, rk, err := parseHash(real)
	if err != nil {
		t.Fatal(err)
	}
	di, ds, dk, err := parseHash(u.dummy)
	if err != nil {
		t.Fatalf("dummy %q: %v", u.dummy, err)
	}
	if di != ri || len(ds) != len(rs) || len(dk) != len(rk) {
		t.Fatalf("dummy: %d iterations, %d-byte salt, %d-byte key; a real hash: %d, %d, %d", di, len(ds), len(dk), ri, len(rs), len(rk))
	}
	product := &Users{}
	product.init()
	if product.iterations != passwordIterations || !strings.HasPrefix(product.dummy, "pbkdf2-sha256$600000$") {
		t.Fatalf("the product's count is %d (dummy %q), not OWASP's %d", product.iterations, product.dummy, passwordIterations)
	}
}

func TestUserLoginRateLimit(t *testing.T) {
	ctx := context.Background()
	u, _, _, clk := newUsers(t)
	if _, err := u.Create(ctx, "alice", "pw", ""); err != nil {
		t.Fatal(err)
	}
	// The default limiter: 5 at once, then 2 a second, per source host.
	for i := range 5 {
		if _, err := u.Login(ctx, "alice", "guess", "192.0.2.1:1000"); !errors.Is(err, ErrBadCredentials) || strings.Contains(err.Error(), "too many") {
			t.Fatalf("attempt %d: %v, want a wrong password", i+1, err)
		}
	}
	_, err := u.Login(ctx, "alice", "pw", "192.0.2.1:2000") // another port, same host
	if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), "too many attempts from 192.0.2.1") {
		t.Fatalf("sixth attempt: %v, want too many attempts", err)
	}
	if _, err := u.Login(ctx, "alice", "pw", "192.0.2.2:1000"); err != nil {
		t.Fatalf("another host is limited too: %v", err)
	}
	clk.add(500 * time.Millisecond)
	if _, err := u.Login(ctx, "alice", "pw", "192.0.2.1"); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
	if _, err := u.Login(ctx, "alice", "pw", "192.0.2.1"); err == nil {
		t.Fatal("one refill let two attempts through")
	}
}

// Concurrent logins of several users, right and wrong, each get their
// own answer (run with -race).
func TestUserLoginConcurrent(t *testing.T) {
	ctx := context.Background()
	u, _, _, _ := newUsers(t)
	u.Limiter = &Limiter{Rate: 1000, Burst: 1000}
	const users = 4
	for i := range users {
		if _, err := u.Create(ctx, fmt.Sprintf("u%d", i), fmt.Sprintf("pw%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, users*8)
	for i := range users * 8 {
		wg.Go(func() {
			name := fmt.Sprintf("u%d", i%users)
			pw := fmt.Sprintf("pw%d", i%users)
			wrong := i%3 == 0
			if wrong {
				pw += "x"
			}
			id, err := u.Login(ctx, name, pw, fmt.Sprintf("192.0.2.%d:1", i%5))
			switch {
			case wrong && !errors.Is(err, ErrBadCredentials):
				errs <- fmt.Errorf("%s wrong password: %v", name, err)
			case !wrong && err != nil:
				errs <- fmt.Errorf("%s: %v", name, err)
			case !wrong && id.Name != name:
				errs <- fmt.Errorf("%s logged in as %+v", name, id)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Deleting a user takes it out of every group, in the store and in the
// Authorizer: a user created later under the same name holds nothing.
func TestUserDeleteRemovesMemberships(t *testing.T) {
	root := auth.WithIdentity(context.Background(), auth.Identity{Kind: auth.KindUnix, Name: "root"})
	u, st, authz, _ := newUsers(t)
	u.Limiter = &Limiter{Rate: 1000, Burst: 1000}
	for _, name := range []string{"alice", "bob"} {
		if _, err := u.Create(root, name, "pw", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []string{"p1-ops", "p2-view"} {
		p := strings.SplitN(g, "-", 2)[0]
		err := authz.CreateGroup(root, auth.Group{Name: g,
			Permissions: []auth.Permission{{Object: auth.Project(p), Entitlement: auth.CanView}},
			Members: []auth.Member{
				{Method: auth.MethodUser, ID: "alice"}, {Method: auth.MethodUser, ID: "bob"}, {Method: auth.MethodToken, ID: "alice"},
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	login := func(name, pw string) context.Context {
		t.Helper()
		id, err := u.Login(root, name, pw, "")
		if err != nil {
			t.Fatalf("login %s: %v", name, err)
		}
		return auth.WithIdentity(context.Background(), id)
	}
	alice := login("alice", "pw")
	if !authz.Allowed(alice, auth.Project("p1"), auth.CanView) {
		t.Fatal("alice cannot view p1 before the delete")
	}

	for _, tc := range []struct {
		name string
		ctx  context.Context
		user string
		kind error
	}{
		{"not admin", login("bob", "pw"), "alice", errdefs.ErrForbidden},
		{"unknown", root, "carol", errdefs.ErrNotFound},
		{"ok", root, "alice", nil},
		{"again", root, "alice", errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, u.Delete(tc.ctx, tc.user), tc.kind, "")
		})
	}

	// The session alice had holds nothing now, nor does a new alice.
	if authz.Allowed(alice, auth.Project("p1"), auth.CanView) {
		t.Fatal("a deleted user's session still views p1")
	}
	if _, err := u.Login(root, "alice", "pw", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("deleted alice logs in: %v", err)
	}
	if _, err := u.Create(root, "alice", "pw2", ""); err != nil {
		t.Fatal(err)
	}
	alice = login("alice", "pw2")
	for _, p := range []string{"p1", "p2"} {
		if authz.Allowed(alice, auth.Project(p), auth.CanView) {
			t.Errorf("the new alice inherits %s", p)
		}
		if !authz.Allowed(login("bob", "pw"), auth.Project(p), auth.CanView) {
			t.Errorf("bob lost %s", p)
		}
	}
	// The store agrees, and so does an Authorizer loaded from it afresh.
	gs, err := st.AuthGroups(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		for _, m := range g.Members {
			if m == (auth.Member{Method: auth.MethodUser, ID: "alice"}) {
				t.Errorf("group %s still names user alice in the store", g.Name)
			}
		}
		if len(g.Members) != 2 {
			t.Errorf("group %s members %v, want bob and the token alice", g.Name, g.Members)
		}
	}
	fresh := auth.New(st)
	if err := fresh.Load(root); err != nil {
		t.Fatal(err)
	}
	if fresh.Allowed(alice, auth.Project("p1"), auth.CanView) {
		t.Error("reloaded groups grant the new alice p1")
	}
}

// BenchmarkLogin is what one login costs at the product's work factor,
// for a user that exists and for one that does not (which should match).
func BenchmarkLogin(b *testing.B) {
	u, _, _, _ := newUsers(b)
	u.iterations = passwordIterations
	u.Limiter = &Limiter{Rate: 1e9, Burst: 1e9}
	ctx := context.Background()
	if _, err := u.Create(ctx, "alice", "pw", ""); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, user, pw string
		ok             bool
	}{
		{"known", "alice", "pw", true},
		{"wrong-password", "alice", "px", false},
		{"unknown", "bob", "pw", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				_, err := u.Login(ctx, bc.user, bc.pw, "192.0.2.1")
				if (err == nil) != bc.ok {
					b.Fatal(err)
				}
			}
		})
	}
}

// A session ends when its user is deleted or its password changes, and a
// user re-created under the same name does not inherit the old sessions.
func TestUserSessionValid(t *testing.T) {
	ctx := context.Background()
	u, _, _, clk := newUsers(t)
	if _, err := u.Create(ctx, "alice", "pw1", ""); err != nil {
		t.Fatal(err)
	}
	first := clk.now()
	if !u.SessionValid("alice", first) {
		t.Fatal("a fresh session is not valid")
	}
	clk.add(time.Second)
	if err := u.SetPassword(ctx, "alice", "pw2"); err != nil {
		t.Fatal(err)
	}
	if u.SessionValid("alice", first) {
		t.Fatal("a session from before the password change is still valid")
	}
	clk.add(time.Second)
	second := clk.now()
	if !u.SessionValid("alice", second) {
		t.Fatal("a session from after the password change is not valid")
	}
	clk.add(time.Second)
	if err := u.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Create(ctx, "alice", "pw3", ""); err != nil {
		t.Fatal(err)
	}
	if u.SessionValid("alice", second) {
		t.Fatal("a session of the deleted user counts for the re-created one")
	}
	if !u.SessionValid("bob", first) {
		t.Fatal("a user never revoked has invalid sessions")
	}
}
