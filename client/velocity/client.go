// Package velocity is the in-tree client of the /v/ API of seed 003 and
// its /u/auth login (wire types: api/velocity). It holds the authkey a
// Login returns and sends it in every request's body, as the API wants.
package velocity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	wire "github.com/hangar-dev/hangar/api/velocity"
)

// Client talks to one server.
type Client struct {
	base string
	hc   *http.Client

	mu      sync.Mutex
	authKey string
}

// New returns a client of the API at base ("https://host:8443" over the
// network, "http://unix/velocity" over hangard's socket with an
// *http.Client dialling it).
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), hc: hc}
}

// NewUnix returns a client of the API on hangard's unix socket.
func NewUnix(socket string) *Client {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	return New("http://unix/velocity", hc)
}

// Error is a non-200 answer.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// StatusOf returns err's HTTP status, 0 for other errors.
func StatusOf(err error) int {
	if e, ok := err.(*Error); ok {
		return e.Status
	}
	return 0
}

// AuthKey returns the authkey in use.
func (c *Client) AuthKey() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authKey
}

// SetAuthKey replaces the authkey (to test a bad one).
func (c *Client) SetAuthKey(k string) {
	c.mu.Lock()
	c.authKey = k
	c.mu.Unlock()
}

// Do sends body (any JSON value, or raw bytes) and decodes a 200 answer
// into out.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var buf []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		buf = b
	default:
		var err error
		if buf, err = json.Marshal(b); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Login gets an authkey for name and keeps it.
func (c *Client) Login(ctx context.Context, name, password string) (wire.AuthResponse, error) {
	var out wire.AuthResponse
	if err := c.Do(ctx, http.MethodPost, "/u/auth", wire.AuthRequest{Name: name, Password: password}, &out); err != nil {
		return out, err
	}
	c.SetAuthKey(out.AuthKey)
	return out, nil
}

// Renew trades the authkey for a new one.
func (c *Client) Renew(ctx context.Context) (wire.AuthResponse, error) {
	var out wire.AuthResponse
	if err := c.Do(ctx, http.MethodPatch, "/u/auth", wire.AuthKeyRequest{AuthKey: c.AuthKey()}, &out); err != nil {
		return out, err
	}
	c.SetAuthKey(out.AuthKey)
	return out, nil
}

// Logout drops the authkey.
func (c *Client) Logout(ctx context.Context) error {
	err := c.Do(ctx, http.MethodDelete, "/u/auth", wire.AuthKeyRequest{AuthKey: c.AuthKey()}, nil)
	c.SetAuthKey("")
	return err
}

// ListVMs lists a group's VMs.
func (c *Client) ListVMs(ctx context.Context, gid string) ([]wire.VMListEntry, error) {
	var out wire.VMList
	err := c.Do(ctx, http.MethodPost, "/v/vm/list", wire.VMListRequest{AuthKey: c.AuthKey(), GID: gid}, &out)
	return out.VMs, err
}

// GetVM returns one VM.
func (c *Client) GetVM(ctx context.Context, vmid string) (wire.VM, error) {
	var out wire.VM
	err := c.Do(ctx, http.MethodPost, "/v/vm", wire.VMRequest{AuthKey: c.AuthKey(), VMID: vmid}, &out)
	return out, err
}

// CreateEFI creates an EFI VM; the request's authkey is filled in.
func (c *Client) CreateEFI(ctx context.Context, req wire.EFIRequest) (string, error) {
	req.AuthKey = c.AuthKey()
	var out wire.Created
	err := c.Do(ctx, http.MethodPut, "/v/vm/efi", req, &out)
	return out.VMID, err
}

// State returns a VM's state.
func (c *Client) State(ctx context.Context, vmid string) (wire.State, error) {
	var out wire.VMState
	err := c.Do(ctx, http.MethodPost, "/v/vm/state", wire.VMRequest{AuthKey: c.AuthKey(), VMID: vmid}, &out)
	return out.State, err
}

// SetState asks for a state change and returns the state after it.
func (c *Client) SetState(ctx context.Context, vmid string, state wire.State, force bool) (wire.State, error) {
	var out wire.VMState
	err := c.Do(ctx, http.MethodPut, "/v/vm/state", wire.StateRequest{AuthKey: c.AuthKey(), VMID: vmid, State: state, Force: force}, &out)
	return out.State, err
}

// HostNICs lists the host NICs available for BRIDGE.
func (c *Client) HostNICs(ctx context.Context) ([]wire.HostNIC, error) {
	var out wire.HostNICs
	err := c.Do(ctx, http.MethodPost, "/v/nic/list", wire.AuthKeyRequest{AuthKey: c.AuthKey()}, &out)
	return out.HostNICs, err
}
