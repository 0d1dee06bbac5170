package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/hangar-dev/hangar/api"
)

// Access management: /1.0/auth/groups (LXD 5.21's access_management). A
// group holds permissions (an entitlement on an entity) and, in hangar,
// names its members directly by authentication method and ID ("tls": a
// certificate fingerprint). Like certificates, groups belong to the server:
// these calls act from the default project.

// GetAuthGroups returns every group.
func (c *Client) GetAuthGroups(ctx context.Context) ([]api.AuthGroup, error) {
	groups := []api.AuthGroup{}
	if _, err := c.UseProject("").queryStruct(ctx, http.MethodGet, "/1.0/auth/groups?recursion=1", nil, "", &groups); err != nil {
		return nil, fmt.Errorf("list auth groups: %w", err)
	}
	return groups, nil
}

// GetAuthGroup returns one group and its ETag.
func (c *Client) GetAuthGroup(ctx context.Context, name string) (*api.AuthGroup, string, error) {
	var g api.AuthGroup
	etag, err := c.UseProject("").queryStruct(ctx, http.MethodGet, authGroupPath(name), nil, "", &g)
	if err != nil {
		return nil, "", err
	}
	return &g, etag, nil
}

// CreateAuthGroup creates a group.
func (c *Client) CreateAuthGroup(ctx context.Context, req api.AuthGroupsPost) error {
	if req.Permissions == nil {
		req.Permissions = []api.Permission{}
	}
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPost, "/1.0/auth/groups", req, "", nil)
	return err
}

// UpdateAuthGroup replaces a group's description, permissions and
// members; etag as in UpdateInstance.
func (c *Client) UpdateAuthGroup(ctx context.Context, name string, put api.AuthGroupPut, etag string) error {
	if put.Permissions == nil {
		put.Permissions = []api.Permission{}
	}
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPut, authGroupPath(name), put, etag, nil)
	return err
}

// RenameAuthGroup renames a group.
func (c *Client) RenameAuthGroup(ctx context.Context, name, newName string) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPost, authGroupPath(name), api.AuthGroupPost{Name: newName}, "", nil)
	return err
}

// DeleteAuthGroup deletes a group.
func (c *Client) DeleteAuthGroup(ctx context.Context, name string) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodDelete, authGroupPath(name), nil, "", nil)
	return err
}

func authGroupPath(name string) string { return "/1.0/auth/groups/" + url.PathEscape(name) }

// Bearer API tokens: /1.0/auth/tokens (hangar_api_tokens). Send one with
// WithBearerToken.

// GetAPITokens returns every API token's record (never their secrets).
func (c *Client) GetAPITokens(ctx context.Context) ([]api.AuthToken, error) {
	tokens := []api.AuthToken{}
	if _, err := c.UseProject("").queryStruct(ctx, http.MethodGet, "/1.0/auth/tokens?recursion=1", nil, "", &tokens); err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return tokens, nil
}

// CreateAPIToken issues an API token. The answer's Token is the bearer
// token, shown this once.
func (c *Client) CreateAPIToken(ctx context.Context, req api.AuthTokensPost) (*api.AuthTokenCreated, error) {
	var out api.AuthTokenCreated
	if _, err := c.UseProject("").queryStruct(ctx, http.MethodPost, "/1.0/auth/tokens", req, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeAPIToken deletes an API token: from then on it is refused.
func (c *Client) RevokeAPIToken(ctx context.Context, name string) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodDelete, "/1.0/auth/tokens/"+url.PathEscape(name), nil, "", nil)
	return err
}
