package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hangar-dev/hangar/api"
)

// GetNetworkNames returns the names of all networks, managed ones and the
// host's interfaces.
func (c *Client) GetNetworkNames(ctx context.Context) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/networks", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return namesFromURLs(urls, "/1.0/networks/"), nil
}

// GetNetworks returns all networks (recursion=1).
func (c *Client) GetNetworks(ctx context.Context) ([]api.Network, error) {
	nets := []api.Network{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/networks?recursion=1", nil, "", &nets); err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return nets, nil
}

// GetNetwork returns one network and its ETag.
func (c *Client) GetNetwork(ctx context.Context, name string) (*api.Network, string, error) {
	var n api.Network
	etag, err := c.queryStruct(ctx, http.MethodGet, networkPath(name), nil, "", &n)
	if err != nil {
		return nil, "", err
	}
	return &n, etag, nil
}

// CreateNetwork creates a managed network.
func (c *Client) CreateNetwork(ctx context.Context, req api.NetworksPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/networks", req, "", nil)
	return err
}

// UpdateNetwork replaces a managed network's description and config; a
// non-empty etag makes the daemon refuse (412) if the network changed
// since it was read.
func (c *Client) UpdateNetwork(ctx context.Context, name string, put api.NetworkPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, networkPath(name), put, etag, nil)
	return err
}

// PatchNetwork merges patch (a map holding "config" keys, an empty value
// removing one, and maybe "description") into a managed network.
func (c *Client) PatchNetwork(ctx context.Context, name string, patch any, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPatch, networkPath(name), patch, etag, nil)
	return err
}

// RenameNetwork renames a managed network nothing uses.
func (c *Client) RenameNetwork(ctx context.Context, name, newName string) error {
	_, err := c.queryStruct(ctx, http.MethodPost, networkPath(name), api.NetworkPost{Name: newName}, "", nil)
	return err
}

// DeleteNetwork deletes a managed network nothing uses.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, networkPath(name), nil, "", nil)
	return err
}

// GetNetworkState returns a network's live interface: addresses,
// counters, MTU, state.
func (c *Client) GetNetworkState(ctx context.Context, name string) (*api.NetworkState, error) {
	var st api.NetworkState
	if _, err := c.queryStruct(ctx, http.MethodGet, networkPath(name)+"/state", nil, "", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// GetNetworkLeases returns the addresses a managed network handed out.
func (c *Client) GetNetworkLeases(ctx context.Context, name string) ([]api.NetworkLease, error) {
	leases := []api.NetworkLease{}
	if _, err := c.queryStruct(ctx, http.MethodGet, networkPath(name)+"/leases", nil, "", &leases); err != nil {
		return nil, err
	}
	return leases, nil
}

// GetNetworkForwardAddresses returns the listen addresses of a network's
// forwards.
func (c *Client) GetNetworkForwardAddresses(ctx context.Context, network string) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, networkPath(network)+"/forwards", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list forwards of %s: %w", network, err)
	}
	return namesFromURLs(urls, networkPath(network)+"/forwards/"), nil
}

// GetNetworkForwards returns a network's forwards (recursion=1).
func (c *Client) GetNetworkForwards(ctx context.Context, network string) ([]api.NetworkForward, error) {
	fs := []api.NetworkForward{}
	if _, err := c.queryStruct(ctx, http.MethodGet, networkPath(network)+"/forwards?recursion=1", nil, "", &fs); err != nil {
		return nil, fmt.Errorf("list forwards of %s: %w", network, err)
	}
	return fs, nil
}

// GetNetworkForward returns one forward and its ETag.
func (c *Client) GetNetworkForward(ctx context.Context, network, listen string) (*api.NetworkForward, string, error) {
	var f api.NetworkForward
	etag, err := c.queryStruct(ctx, http.MethodGet, forwardPath(network, listen), nil, "", &f)
	if err != nil {
		return nil, "", err
	}
	return &f, etag, nil
}

// CreateNetworkForward creates a forward on a network.
func (c *Client) CreateNetworkForward(ctx context.Context, network string, req api.NetworkForwardsPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, networkPath(network)+"/forwards", req, "", nil)
	return err
}

// UpdateNetworkForward replaces a forward; etag as in UpdateNetwork.
func (c *Client) UpdateNetworkForward(ctx context.Context, network, listen string, put api.NetworkForwardPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, forwardPath(network, listen), put, etag, nil)
	return err
}

// PatchNetworkForward merges patch (a map holding "config" keys, "ports"
// or "description") into a forward.
func (c *Client) PatchNetworkForward(ctx context.Context, network, listen string, patch any, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPatch, forwardPath(network, listen), patch, etag, nil)
	return err
}

// DeleteNetworkForward deletes a forward.
func (c *Client) DeleteNetworkForward(ctx context.Context, network, listen string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, forwardPath(network, listen), nil, "", nil)
	return err
}

func networkPath(name string) string { return "/1.0/networks/" + escape(name) }

func forwardPath(network, listen string) string {
	return networkPath(network) + "/forwards/" + escape(listen)
}
