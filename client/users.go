package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/hangar-dev/hangar/api"
)

// Local users: /1.0/users (hangar_users). A user logs in to the dialects
// with logins by name and password; the auth groups naming it (identities
// "user") say what it may do. The password is write-only. Users belong to
// the server: these calls act from the default project.

// GetUsers returns every user (never their passwords).
func (c *Client) GetUsers(ctx context.Context) ([]api.User, error) {
	users := []api.User{}
	if _, err := c.UseProject("").queryStruct(ctx, http.MethodGet, "/1.0/users?recursion=1", nil, "", &users); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// GetUser returns one user and its ETag.
func (c *Client) GetUser(ctx context.Context, name string) (*api.User, string, error) {
	var u api.User
	etag, err := c.UseProject("").queryStruct(ctx, http.MethodGet, userPath(name), nil, "", &u)
	if err != nil {
		return nil, "", err
	}
	return &u, etag, nil
}

// CreateUser creates a user with its password.
func (c *Client) CreateUser(ctx context.Context, req api.UsersPost) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPost, "/1.0/users", req, "", nil)
	return err
}

// UpdateUser replaces a user's description, and its password when put
// has one; etag as in UpdateInstance.
func (c *Client) UpdateUser(ctx context.Context, name string, put api.UserPut, etag string) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPut, userPath(name), put, etag, nil)
	return err
}

// SetUserPassword replaces a user's password, leaving the rest. An empty
// password is sent as such, for the server to refuse.
func (c *Client) SetUserPassword(ctx context.Context, name, password string) error {
	body := struct {
		Password string `json:"password"`
	}{password}
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPatch, userPath(name), body, "", nil)
	return err
}

// DeleteUser deletes a user; it leaves every group it was in.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodDelete, userPath(name), nil, "", nil)
	return err
}

func userPath(name string) string { return "/1.0/users/" + url.PathEscape(name) }
