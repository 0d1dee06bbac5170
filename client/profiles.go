package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hangar-dev/hangar/api"
)

// GetProfileNames returns the names of all profiles.
func (c *Client) GetProfileNames(ctx context.Context) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/profiles", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	return namesFromURLs(urls, "/1.0/profiles/"), nil
}

// GetProfiles returns all profiles (recursion=1).
func (c *Client) GetProfiles(ctx context.Context) ([]api.Profile, error) {
	profiles := []api.Profile{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/profiles?recursion=1", nil, "", &profiles); err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	return profiles, nil
}

// GetProfile returns one profile and its ETag.
func (c *Client) GetProfile(ctx context.Context, name string) (*api.Profile, string, error) {
	var p api.Profile
	etag, err := c.queryStruct(ctx, http.MethodGet, profilePath(name), nil, "", &p)
	if err != nil {
		return nil, "", err
	}
	return &p, etag, nil
}

// CreateProfile creates a profile.
func (c *Client) CreateProfile(ctx context.Context, req api.ProfilesPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/profiles", req, "", nil)
	return err
}

// UpdateProfile replaces a profile's configuration; etag as in UpdateInstance.
func (c *Client) UpdateProfile(ctx context.Context, name string, put api.ProfilePut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, profilePath(name), put, etag, nil)
	return err
}

// RenameProfile renames a profile.
func (c *Client) RenameProfile(ctx context.Context, name, newName string) error {
	_, err := c.queryStruct(ctx, http.MethodPost, profilePath(name), api.ProfilePost{Name: newName}, "", nil)
	return err
}

// DeleteProfile deletes an unused profile.
func (c *Client) DeleteProfile(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, profilePath(name), nil, "", nil)
	return err
}

func profilePath(name string) string { return "/1.0/profiles/" + escape(name) }
