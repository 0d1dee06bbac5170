// Package instances is a Go client of hangard's instances API (seed 002:
// OCI images as VMs), written in-tree from the seed's types in package
// api/instances. One method per method of the seed's InstanceService and
// its sub-services (AutoStandby, Snapshots, SnapshotSchedule, Volumes),
// with the same paths, query parameters and bodies.
package instances

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	wire "github.com/hangar-dev/hangar/api/instances"
)

// Error is an error answer: its HTTP status and the dialect's code and
// message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// StatusOf returns err's HTTP status, 0 when it is not an *Error.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Client talks to one server.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client

	AutoStandby      AutoStandbyService
	Snapshots        SnapshotService
	SnapshotSchedule SnapshotScheduleService
	Volumes          VolumeService
}

// Option configures a Client.
type Option func(*Client) error

// WithBearerToken sends "Authorization: Bearer TOKEN".
func WithBearerToken(tok string) Option {
	return func(c *Client) error { c.token = tok; return nil }
}

// WithUnixSocket reaches the server over a unix socket; the base URL's
// host is then ignored (use http://unix/instances-api/).
func WithUnixSocket(path string) Option {
	return func(c *Client) error {
		c.http = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}}
		return nil
	}
}

// WithHTTPClient uses hc for every request.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error { c.http = hc; return nil }
}

// New returns a client of the API at baseURL ("http://host:port/", or
// "http://unix/instances-api/" with WithUnixSocket).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("base URL %q: want http:// or https://", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := &Client{base: u, http: http.DefaultClient}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.AutoStandby = AutoStandbyService{c}
	c.Snapshots = SnapshotService{c}
	c.SnapshotSchedule = SnapshotScheduleService{c}
	c.Volumes = VolumeService{c}
	return c, nil
}

// do sends a request; body (if not nil) is sent as JSON; the answer is
// decoded into out (if not nil). A status >= 400 is an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, q, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any, accept string) (*http.Response, error) {
	u := c.base.JoinPath(path)
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{Status: resp.StatusCode}
		var we wire.Error
		if json.Unmarshal(b, &we) == nil && we.Code != "" {
			e.Code, e.Message = we.Code, we.Message
		} else {
			e.Code, e.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(b))
		}
		return nil, e
	}
	return resp, nil
}

func idPath(id string, rest ...string) (string, error) {
	if id == "" {
		return "", errors.New("missing required id parameter")
	}
	p := "instances/" + id
	for _, r := range rest {
		p += "/" + r
	}
	return p, nil
}

// New creates and starts an instance.
func (c *Client) New(ctx context.Context, p wire.InstanceNewParams) (*wire.Instance, error) {
	var out wire.Instance
	return &out, c.do(ctx, http.MethodPost, "instances", nil, p, &out)
}

// Update replaces credential values (env keys credentials name).
func (c *Client) Update(ctx context.Context, id string, p wire.InstanceUpdateParams) (*wire.Instance, error) {
	return c.instanceCall(ctx, http.MethodPatch, id, "", p)
}

// ListParams filters List: both ANDed.
type ListParams struct {
	State wire.State
	Tags  map[string]string
}

// List lists instances.
func (c *Client) List(ctx context.Context, p ListParams) ([]wire.Instance, error) {
	q := url.Values{}
	if p.State != "" {
		q.Set("state", string(p.State))
	}
	keys := make([]string, 0, len(p.Tags))
	for k := range p.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Set("tags["+k+"]", p.Tags[k])
	}
	var out []wire.Instance
	return out, c.do(ctx, http.MethodGet, "instances", q, nil, &out)
}

// Get returns one instance by id or name.
func (c *Client) Get(ctx context.Context, id string) (*wire.Instance, error) {
	return c.instanceCall(ctx, http.MethodGet, id, "", nil)
}

// Delete stops and deletes an instance.
func (c *Client) Delete(ctx context.Context, id string) error {
	p, err := idPath(id)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil, nil)
}

// Fork forks an instance.
func (c *Client) Fork(ctx context.Context, id string, p wire.InstanceForkParams) (*wire.Instance, error) {
	return c.instanceCall(ctx, http.MethodPost, id, "fork", p)
}

// Restore restores an instance from standby.
func (c *Client) Restore(ctx context.Context, id string) (*wire.Instance, error) {
	return c.instanceCall(ctx, http.MethodPost, id, "restore", nil)
}

// Standby puts an instance in standby.
func (c *Client) Standby(ctx context.Context, id string, p wire.InstanceStandbyParams) (*wire.Instance, error) {
	return c.instanceCall(ctx, http.MethodPost, id, "standby", p)
}

// Start starts a stopped instance.
func (c *Client) Start(ctx context.Context, id string, p wire.InstanceStartParams) (*wire.Instance, error) {
	return c.instanceCall(ctx, http.MethodPost, id, "start", p)
}

// Stop stops an instance gracefully.
func (c *Client) Stop(ctx context.Context, id string) (*wire.Instance, error) {
	return c.instanceCall(ctx, http.MethodPost, id, "stop", nil)
}

func (c *Client) instanceCall(ctx context.Context, method, id, sub string, body any) (*wire.Instance, error) {
	var rest []string
	if sub != "" {
		rest = []string{sub}
	}
	p, err := idPath(id, rest...)
	if err != nil {
		return nil, err
	}
	var out wire.Instance
	if err := c.do(ctx, method, p, nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Stat says what a guest path is.
func (c *Client) Stat(ctx context.Context, id, path string, followLinks bool) (*wire.PathInfo, error) {
	p, err := idPath(id, "stat")
	if err != nil {
		return nil, err
	}
	q := url.Values{"path": {path}}
	if followLinks {
		q.Set("follow_links", "true")
	}
	var out wire.PathInfo
	return &out, c.do(ctx, http.MethodGet, p, q, nil, &out)
}

// Stats returns a running VM's resource use.
func (c *Client) Stats(ctx context.Context, id string) (*wire.InstanceStats, error) {
	p, err := idPath(id, "stats")
	if err != nil {
		return nil, err
	}
	var out wire.InstanceStats
	return &out, c.do(ctx, http.MethodGet, p, nil, nil, &out)
}

// Wait blocks until the instance is in state, or timeout ("" is the
// server's 60s) passes.
func (c *Client) Wait(ctx context.Context, id string, state wire.State, timeout string) (*wire.WaitForStateResponse, error) {
	p, err := idPath(id, "wait")
	if err != nil {
		return nil, err
	}
	q := url.Values{"state": {string(state)}}
	if timeout != "" {
		q.Set("timeout", timeout)
	}
	var out wire.WaitForStateResponse
	return &out, c.do(ctx, http.MethodGet, p, q, nil, &out)
}

// LogsParams select a log: Source "" is app; Tail nil is the server's.
type LogsParams struct {
	Follow bool
	Tail   *int
	Source string
}

// LogStream yields log lines from the server's Server-Sent Events.
type LogStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
	line string
	err  error
}

// Logs opens an instance's log as an SSE stream.
func (c *Client) Logs(ctx context.Context, id string, lp LogsParams) (*LogStream, error) {
	p, err := idPath(id, "logs")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if lp.Follow {
		q.Set("follow", "true")
	}
	if lp.Tail != nil {
		q.Set("tail", strconv.Itoa(*lp.Tail))
	}
	if lp.Source != "" {
		q.Set("source", lp.Source)
	}
	resp, err := c.send(ctx, http.MethodGet, p, q, nil, "text/event-stream")
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("logs: content type %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &LogStream{body: resp.Body, sc: sc}, nil
}

// Next reads the next line; false at the end or on an error (see Err).
// An event of type "error" (the server cut the stream) is an error.
func (s *LogStream) Next() bool {
	var data []string
	event := ""
	for s.sc.Scan() {
		l := s.sc.Text()
		switch {
		case l == "":
			if data == nil {
				continue
			}
			msg := strings.Join(data, "\n")
			if event == "error" {
				s.err = errors.New("logs: server: " + msg)
				return false
			}
			s.line = msg
			return true
		case strings.HasPrefix(l, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(l, "data:"), " "))
		case strings.HasPrefix(l, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(l, "event:"))
		}
	}
	s.err = s.sc.Err()
	return false
}

// Line is the line Next read.
func (s *LogStream) Line() string { return s.line }

// Err is why Next returned false (nil at a clean end).
func (s *LogStream) Err() error { return s.err }

// Close ends the stream.
func (s *LogStream) Close() error { return s.body.Close() }

// AutoStandbyService is the instance's auto-standby.
type AutoStandbyService struct{ c *Client }

// Status returns the controller's view of the instance.
func (s AutoStandbyService) Status(ctx context.Context, id string) (*wire.AutoStandbyStatus, error) {
	return s.call(ctx, http.MethodGet, id, "status")
}

// Hold keeps the instance awake for one idle timeout from now.
func (s AutoStandbyService) Hold(ctx context.Context, id string) (*wire.AutoStandbyStatus, error) {
	return s.call(ctx, http.MethodPost, id, "hold")
}

func (s AutoStandbyService) call(ctx context.Context, method, id, what string) (*wire.AutoStandbyStatus, error) {
	p, err := idPath(id, "auto-standby", what)
	if err != nil {
		return nil, err
	}
	var out wire.AutoStandbyStatus
	return &out, s.c.do(ctx, method, p, nil, nil, &out)
}

// SnapshotService is the instance's snapshots.
type SnapshotService struct{ c *Client }

// New takes a snapshot.
func (s SnapshotService) New(ctx context.Context, id string, p wire.InstanceSnapshotNewParams) (*wire.Snapshot, error) {
	path, err := idPath(id, "snapshots")
	if err != nil {
		return nil, err
	}
	var out wire.Snapshot
	return &out, s.c.do(ctx, http.MethodPost, path, nil, p, &out)
}

// Restore restores the instance from one of its snapshots.
func (s SnapshotService) Restore(ctx context.Context, id, snapshotID string, p wire.InstanceSnapshotRestoreParams) (*wire.Instance, error) {
	if snapshotID == "" {
		return nil, errors.New("missing required snapshotId parameter")
	}
	path, err := idPath(id, "snapshots", snapshotID, "restore")
	if err != nil {
		return nil, err
	}
	var out wire.Instance
	return &out, s.c.do(ctx, http.MethodPost, path, nil, p, &out)
}

// SnapshotScheduleService is the instance's snapshot schedule.
type SnapshotScheduleService struct{ c *Client }

// Get returns the schedule.
func (s SnapshotScheduleService) Get(ctx context.Context, id string) (*wire.SnapshotSchedule, error) {
	p, err := idPath(id, "snapshot-schedule")
	if err != nil {
		return nil, err
	}
	var out wire.SnapshotSchedule
	return &out, s.c.do(ctx, http.MethodGet, p, nil, nil, &out)
}

// Update creates or replaces the schedule.
func (s SnapshotScheduleService) Update(ctx context.Context, id string, req wire.SetSnapshotScheduleRequest) (*wire.SnapshotSchedule, error) {
	p, err := idPath(id, "snapshot-schedule")
	if err != nil {
		return nil, err
	}
	var out wire.SnapshotSchedule
	return &out, s.c.do(ctx, http.MethodPut, p, nil, req, &out)
}

// Delete removes the schedule.
func (s SnapshotScheduleService) Delete(ctx context.Context, id string) error {
	p, err := idPath(id, "snapshot-schedule")
	if err != nil {
		return err
	}
	return s.c.do(ctx, http.MethodDelete, p, nil, nil, nil)
}

// VolumeService is the instance's volumes.
type VolumeService struct{ c *Client }

// Attach attaches a volume.
func (s VolumeService) Attach(ctx context.Context, id, volumeID string, p wire.InstanceVolumeAttachParams) (*wire.Instance, error) {
	return s.call(ctx, http.MethodPost, id, volumeID, p)
}

// Detach detaches a volume.
func (s VolumeService) Detach(ctx context.Context, id, volumeID string) (*wire.Instance, error) {
	return s.call(ctx, http.MethodDelete, id, volumeID, nil)
}

func (s VolumeService) call(ctx context.Context, method, id, volumeID string, body any) (*wire.Instance, error) {
	if volumeID == "" {
		return nil, errors.New("missing required volumeId parameter")
	}
	p, err := idPath(id, "volumes", volumeID)
	if err != nil {
		return nil, err
	}
	var out wire.Instance
	return &out, s.c.do(ctx, method, p, nil, body, &out)
}
