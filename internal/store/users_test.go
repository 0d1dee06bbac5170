package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/store"
)

const (
	hashA = "pbkdf2-sha256$1000$c2FsdA$a2V5QQ"
	hashB = "pbkdf2-sha256$1000$c2FsdA$a2V5Qg"
)

func TestUsers(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	alice := store.User{Name: "alice", Description: "ops", PasswordHash: hashA, CreatedAt: ts(1)}
	wantKind(t, s.CreateUser(ctx, alice), nil, "")
	wantKind(t, s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: hashB, CreatedAt: ts(2)}), nil, "")

	for _, tc := range []struct {
		name string
		u    store.User
		kind error
		msg  string
	}{
		{"duplicate name", store.User{Name: "alice", PasswordHash: hashB, CreatedAt: ts(3)}, errConflict, `user "alice" already exists`},
		{"empty name", store.User{PasswordHash: hashA, CreatedAt: ts(3)}, errInvalid, ""},
		{"clear password", store.User{Name: "carol", PasswordHash: "hunter2", CreatedAt: ts(3)}, errInvalid, ""},
		{"no password", store.User{Name: "dave", CreatedAt: ts(3)}, errInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, s.CreateUser(ctx, tc.u), tc.kind, tc.msg)
		})
	}

	got, err := s.GetUser(ctx, "alice")
	wantKind(t, err, nil, "")
	want := alice
	want.CreatedAt = alice.CreatedAt.UTC()
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("get (-want +got):\n%s", d)
	}
	_, err = s.GetUser(ctx, "carol")
	wantKind(t, err, errNotFound, `user "carol" not found`)

	list, err := s.ListUsers(ctx)
	wantKind(t, err, nil, "")
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Fatalf("list = %+v", list)
	}

	desc, hash, bad := "team lead", hashB, "clear"
	for _, tc := range []struct {
		name     string
		user     string
		up       store.UserUpdate
		kind     error
		wantDesc string
		wantHash string
	}{
		{"nothing", "alice", store.UserUpdate{}, nil, "ops", hashA},
		{"description only", "alice", store.UserUpdate{Description: &desc}, nil, desc, hashA},
		{"password only", "alice", store.UserUpdate{PasswordHash: &hash}, nil, desc, hashB},
		{"not a hash", "alice", store.UserUpdate{PasswordHash: &bad}, errInvalid, desc, hashB},
		{"unknown user", "carol", store.UserUpdate{Description: &desc}, errNotFound, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, s.UpdateUser(ctx, tc.user, tc.up), tc.kind, "")
			if tc.wantHash == "" {
				return
			}
			u, err := s.GetUser(ctx, tc.user)
			wantKind(t, err, nil, "")
			if u.Description != tc.wantDesc || u.PasswordHash != tc.wantHash {
				t.Fatalf("after update: %+v, want description %q hash %q", u, tc.wantDesc, tc.wantHash)
			}
		})
	}
}

// Deleting a user takes it out of every group, and only it: the same
// name on another method, and other users, stay.
func TestDeleteUserMemberships(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	for _, name := range []string{"alice", "bob"} {
		wantKind(t, s.CreateUser(ctx, store.User{Name: name, PasswordHash: hashA, CreatedAt: ts(1)}), nil, "")
	}
	members := []auth.Member{
		{Method: auth.MethodUser, ID: "alice"},
		{Method: auth.MethodUser, ID: "bob"},
		{Method: auth.MethodToken, ID: "alice"},
	}
	for _, g := range []string{"g1", "g2"} {
		wantKind(t, s.CreateAuthGroup(ctx, auth.Group{Name: g, Members: members}), nil, "")
	}

	wantKind(t, s.DeleteUser(ctx, "alice"), nil, "")
	wantKind(t, s.DeleteUser(ctx, "alice"), errNotFound, `user "alice" not found`)
	_, err := s.GetUser(ctx, "alice")
	wantKind(t, err, errNotFound, "")

	gs, err := s.AuthGroups(ctx)
	wantKind(t, err, nil, "")
	want := []auth.Member{{Method: auth.MethodToken, ID: "alice"}, {Method: auth.MethodUser, ID: "bob"}}
	for _, g := range gs {
		if d := cmp.Diff(want, g.Members); d != "" {
			t.Errorf("group %s members (-want +got):\n%s", g.Name, d)
		}
	}

	// An unknown user's delete changes no group.
	wantKind(t, s.DeleteUser(ctx, "carol"), errNotFound, "")
}
