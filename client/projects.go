package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/hangar-dev/hangar/api"
)

// GetProjectNames returns the names of all projects.
func (c *Client) GetProjectNames(ctx context.Context) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/projects", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return namesFromURLs(urls, "/1.0/projects/"), nil
}

// GetProjects returns all projects (recursion=1).
func (c *Client) GetProjects(ctx context.Context) ([]api.Project, error) {
	projects := []api.Project{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/projects?recursion=1", nil, "", &projects); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return projects, nil
}

// GetProject returns one project and its ETag.
func (c *Client) GetProject(ctx context.Context, name string) (*api.Project, string, error) {
	var p api.Project
	etag, err := c.queryStruct(ctx, http.MethodGet, projectPath(name), nil, "", &p)
	if err != nil {
		return nil, "", err
	}
	return &p, etag, nil
}

// GetProjectState returns a project's limits and usage per resource.
func (c *Client) GetProjectState(ctx context.Context, name string) (*api.ProjectState, error) {
	var st api.ProjectState
	if _, err := c.queryStruct(ctx, http.MethodGet, projectPath(name)+"/state", nil, "", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// CreateProject creates a project; req.Parent nests it in another.
func (c *Client) CreateProject(ctx context.Context, req api.ProjectsPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/projects", req, "", nil)
	return err
}

// UpdateProject replaces a project's description and config (and its
// parent when put.Parent is set); etag as in UpdateInstance.
func (c *Client) UpdateProject(ctx context.Context, name string, put api.ProjectPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, projectPath(name), put, etag, nil)
	return err
}

// RenameProject renames an empty project and waits for it.
func (c *Client) RenameProject(ctx context.Context, name, newName string) error {
	// queryStruct waits for the operation the daemon answers with.
	_, err := c.queryStruct(ctx, http.MethodPost, projectPath(name), api.ProjectPost{Name: newName}, "", nil)
	return err
}

// DeleteProject deletes an empty project.
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, projectPath(name), nil, "", nil)
	return err
}

func projectPath(name string) string { return "/1.0/projects/" + url.PathEscape(name) }
