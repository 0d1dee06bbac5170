package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hangar-dev/hangar/api"
)

// GetServer returns GET /1.0 and its ETag.
func (c *Client) GetServer(ctx context.Context) (*api.Server, string, error) {
	var s api.Server
	etag, err := c.queryStruct(ctx, http.MethodGet, "/1.0", nil, "", &s)
	if err != nil {
		return nil, "", fmt.Errorf("get server: %w", err)
	}
	return &s, etag, nil
}

// GetInstanceNames returns the names of all instances.
func (c *Client) GetInstanceNames(ctx context.Context) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/instances", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return namesFromURLs(urls, "/1.0/instances/"), nil
}

// GetInstances returns all instances (recursion=1).
func (c *Client) GetInstances(ctx context.Context) ([]api.Instance, error) {
	insts := []api.Instance{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/instances?recursion=1", nil, "", &insts); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return insts, nil
}

// GetInstancesFull returns all instances with their state (recursion=2).
// filter, when not empty, is passed through as LXD's filter= query parameter
// (e.g. "status eq Running") for the daemon to apply.
func (c *Client) GetInstancesFull(ctx context.Context, filter string) ([]api.InstanceFull, error) {
	q := url.Values{"recursion": {"2"}}
	if filter != "" {
		q.Set("filter", filter)
	}
	insts := []api.InstanceFull{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/instances?"+q.Encode(), nil, "", &insts); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return insts, nil
}

// GetInstancesFullJSON is GetInstancesFull without the decode: the JSON
// array of instances with their state as the daemon sent it (checked to be
// valid JSON, not against api.InstanceFull). It is for callers that only
// print or forward the answer, for whom decoding 1000 instances costs
// more than the request itself.
func (c *Client) GetInstancesFullJSON(ctx context.Context, filter string) (json.RawMessage, error) {
	q := url.Values{"recursion": {"2"}}
	if filter != "" {
		q.Set("filter", filter)
	}
	var raw json.RawMessage
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/instances?"+q.Encode(), nil, "", &raw); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return raw, nil
}

// GetInstance returns one instance and its ETag.
func (c *Client) GetInstance(ctx context.Context, name string) (*api.Instance, string, error) {
	var inst api.Instance
	etag, err := c.queryStruct(ctx, http.MethodGet, instancePath(name), nil, "", &inst)
	if err != nil {
		return nil, "", err
	}
	return &inst, etag, nil
}

// CreateInstance creates an instance (and starts it when req.Start is set).
// An empty req.Name lets the daemon pick one; OperationInstanceNames on the
// operation tells which.
func (c *Client) CreateInstance(ctx context.Context, req api.InstancesPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, "/1.0/instances", req, "")
}

// UpdateInstance replaces an instance's configuration (PUT). etag, when not
// empty, makes the daemon refuse the change if the instance changed since it
// was read.
func (c *Client) UpdateInstance(ctx context.Context, name string, put api.InstancePut, etag string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, instancePath(name), put, etag)
}

// PatchInstance merges patch (an api.InstancePut or a map holding some of its
// fields) into the instance's configuration.
func (c *Client) PatchInstance(ctx context.Context, name string, patch any, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPatch, instancePath(name), patch, etag, nil)
	return err
}

// RenameInstance renames an instance. hangard renames running instances too:
// the runtime identity of a container does not depend on its name.
func (c *Client) RenameInstance(ctx context.Context, name, newName string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, instancePath(name), api.InstancePost{Name: newName}, "")
}

// DeleteInstance deletes a (stopped) instance.
func (c *Client) DeleteInstance(ctx context.Context, name string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, instancePath(name), nil, "")
}

// GetInstanceState returns an instance's runtime state.
func (c *Client) GetInstanceState(ctx context.Context, name string) (*api.InstanceState, error) {
	var st api.InstanceState
	if _, err := c.queryStruct(ctx, http.MethodGet, instancePath(name)+"/state", nil, "", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// UpdateInstanceState starts, stops, restarts, freezes or unfreezes an instance.
func (c *Client) UpdateInstanceState(ctx context.Context, name string, req api.InstanceStatePut) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPut, instancePath(name)+"/state", req, "")
}

// GetInstanceConsoleLog returns the instance's console log. The endpoint
// answers with the raw log, not an envelope, unless it fails.
func (c *Client) GetInstanceConsoleLog(ctx context.Context, name string) ([]byte, error) {
	return c.getRaw(ctx, instancePath(name)+"/console")
}

// getRaw GETs an endpoint that answers with a file rather than an envelope
// (errors still come as one).
func (c *Client) getRaw(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, path, nil, -1, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		_, _, err := parseResponse(resp, nil)
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

func instancePath(name string) string { return "/1.0/instances/" + escape(name) }

// GetInstanceLogFile returns a log file of an instance by its API path, as
// the daemon names them (/1.0/instances/NAME/logs/..., e.g. the "output"
// of a recorded exec).
func (c *Client) GetInstanceLogFile(ctx context.Context, path string) ([]byte, error) {
	if !strings.HasPrefix(path, "/1.0/instances/") || !strings.Contains(path, "/logs/") {
		return nil, fmt.Errorf("%q is not an instance log file path", path)
	}
	return c.getRaw(ctx, path)
}

// CopyInstance copies an instance, or one of its snapshots ("NAME/SNAP"),
// to a new instance: req names it and may override config, devices and
// profiles; its Source is set here.
func (c *Client) CopyInstance(ctx context.Context, source string, instanceOnly bool, req api.InstancesPost) (*Operation, error) {
	req.Source = api.InstanceSource{Type: "copy", Source: source, InstanceOnly: instanceOnly}
	return c.CreateInstance(ctx, req)
}

// ForkInstance forks an instance (extension hangar_fork): a running VM's
// fork runs its processes; a container's boots from a clone of its root.
// The finished operation's metadata is an api.InstanceFork.
func (c *Client) ForkInstance(ctx context.Context, name, newName string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, instancePath(name)+"/fork", api.InstanceForkPost{Name: newName}, "")
}
