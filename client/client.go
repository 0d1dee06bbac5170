// Package client is the Go SDK of hangard. It speaks the LXD REST API 1.0
// (package api holds the wire types) over hangard's unix socket (Connect)
// or, to a remote hangard, over HTTPS with a client certificate
// (ConnectHTTPS).
//
// Every call takes a context. Calls that LXD runs in the background (create,
// update, rename, delete and state changes of instances, image import and
// delete) return an *Operation; call its Wait to block until it ends.
//
// Hangar-specific wire details the SDK relies on:
//
//   - POST /1.0/images with a raw tarball body carries the alias to create in
//     the X-Hangar-Alias header (LXD has no header for it), next to LXD's
//     X-LXD-filename, X-LXD-public and X-LXD-properties.
//   - GET /1.0/events accepts since=N (API extension hangar_event_sequence)
//     to replay the events whose sequence is greater than N.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// DefaultSocketPath is where hangard listens unless told otherwise.
const DefaultSocketPath = "/var/lib/hangar/unix.socket"

// SocketEnv names the environment variable that overrides DefaultSocketPath.
const SocketEnv = "HANGAR_SOCKET"

// DefaultSocket returns the socket to use when the caller names none:
// $HANGAR_SOCKET when set, else DefaultSocketPath.
func DefaultSocket() string {
	if s := os.Getenv(SocketEnv); s != "" {
		return s
	}
	return DefaultSocketPath
}

// unixBaseURL is the URL every request over the unix socket is made
// against. The host is a placeholder: the transport always dials the
// socket.
const unixBaseURL = "http://hangar"

// Client talks to one hangard. It is safe for concurrent use.
type Client struct {
	socket string
	// base is the URL requests are made against ("http://hangar" over
	// the socket, "https://HOST:PORT" over the network) and wsBase the
	// same for websockets.
	base, wsBase string
	// addr is the remote's HOST:PORT, "" over the unix socket.
	addr      string
	transport *http.Transport
	http      *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// project is the project every request acts in ("": the server's
	// default); see UseProject.
	project string
	// bearer is the API token sent with every request ("": none); see
	// WithBearerToken.
	bearer string
}

// WithBearerToken returns a client that sends token as
// "Authorization: Bearer TOKEN" on every request, websockets included,
// and shares c's connections. hangard then treats every request as that
// API token, whatever the transport: over the unix socket this acts with
// the token's (smaller) power instead of root's. "" sends none.
func (c *Client) WithBearerToken(token string) *Client {
	cp := *c
	cp.bearer = token
	return &cp
}

// headers are what every request and websocket sends.
func (c *Client) headers() http.Header {
	h := http.Header{"User-Agent": {c.UserAgent}}
	if c.bearer != "" {
		h.Set("Authorization", "Bearer "+c.bearer)
	}
	return h
}

// UseProject returns a client that acts in project (?project= on every
// request, websockets included) and shares c's connections. "" is the
// default project.
func (c *Client) UseProject(project string) *Client {
	cp := *c
	cp.project = project
	return &cp
}

// Project returns the project the client acts in, "" for the default.
func (c *Client) Project() string { return c.project }

// inProject adds the client's project to path's query, unless the path
// names one itself.
func (c *Client) inProject(path string) string {
	if c.project == "" {
		return path
	}
	base, query, _ := strings.Cut(path, "?")
	q, err := url.ParseQuery(query)
	if err != nil || q.Has("project") {
		return path
	}
	if query == "" {
		return base + "?project=" + url.QueryEscape(c.project)
	}
	return base + "?" + query + "&project=" + url.QueryEscape(c.project)
}

// Connect returns a Client for the hangard listening on socketPath, or on
// DefaultSocket() when socketPath is empty. It does not contact the daemon,
// so that short-lived callers pay for exactly the requests they make; a
// daemon that is not running shows up as an error of the first call.
func Connect(socketPath string) (*Client, error) {
	if socketPath == "" {
		socketPath = DefaultSocket()
	}
	if strings.ContainsRune(socketPath, 0) {
		return nil, fmt.Errorf("invalid socket path %q", socketPath)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socketPath)
		},
		// Keep connections for the many short requests a CLI command or
		// an SDK user makes in a row.
		MaxIdleConns:        16,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     60 * time.Second,
		// Operations waits and image uploads may take long: no overall
		// timeout here, callers bound requests with their context.
		ResponseHeaderTimeout: 0,
	}
	return &Client{
		socket:    socketPath,
		base:      unixBaseURL,
		wsBase:    "ws://hangar",
		transport: transport,
		// No Timeout: it would also cut websockets and /wait long polls.
		http:      &http.Client{Transport: transport},
		UserAgent: "hangar-client",
	}, nil
}

// SocketPath returns the socket the client dials, "" for a client
// connected over HTTPS.
func (c *Client) SocketPath() string { return c.socket }

// Addr returns the HOST:PORT of a client connected over HTTPS, "" for one
// on the unix socket.
func (c *Client) Addr() string { return c.addr }

// Close releases idle connections. The Client must not be used afterwards.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
}

// Query sends one request and decodes the response envelope. path is the
// full API path with its query string, e.g. "/1.0/instances?recursion=1".
// body, when not nil, is sent as JSON. etag, when not empty, is sent as
// If-Match so that the daemon refuses the change if the object changed since
// it was read. Query returns the envelope and the response's ETag header. An
// error envelope (or any HTTP status >= 400) becomes an *Error.
func (c *Client) Query(ctx context.Context, method, path string, body any, etag string) (*api.Response, string, error) {
	return c.query(ctx, method, path, body, etag, nil)
}

// query is Query, and when target is not nil and the answer is sync, its
// metadata is decoded into target in the same pass as the envelope; the
// returned Response's Metadata is then empty.
func (c *Client) query(ctx context.Context, method, path string, body any, etag string, target any) (*api.Response, string, error) {
	var (
		reader      io.Reader
		contentType string
	)
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, "", fmt.Errorf("encode request body: %w", err)
		}
		reader = bytes.NewReader(data)
		contentType = "application/json"
	}
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	if etag != "" {
		header.Set("If-Match", etag)
	}
	resp, err := c.do(ctx, method, path, reader, -1, header)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	return parseResponse(resp, target)
}

// rawQuery sends body as is with the given headers. size is the body's length
// or -1 when unknown (then the body is sent chunked).
func (c *Client) rawQuery(ctx context.Context, method, path string, body io.Reader, size int64, header http.Header) (*api.Response, string, error) {
	resp, err := c.do(ctx, method, path, body, size, header)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	return parseResponse(resp, nil)
}

// do sends a request and returns the raw HTTP response.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64, header http.Header) (*http.Response, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+c.inProject(path), body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s request: %w", method, path, err)
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	for k, v := range c.headers() {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.wrapTransportError(method, path, err)
	}
	return resp, nil
}

// wrapTransportError turns net/http's "Get \"http://hangar/1.0/...\": dial
// unix ...: connect: no such file or directory" into a message that names the
// socket and says what is likely wrong.
func (c *Client) wrapTransportError(method, path string, err error) error {
	if ctxErr := contextError(err); ctxErr != nil {
		return ctxErr
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return &ConnectError{Socket: c.socket, Addr: c.addr, Err: opErr.Err}
	}
	var mismatch *CertificateMismatchError
	if errors.As(err, &mismatch) {
		return mismatch
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// contextError returns the context error inside err, if any, so that callers
// can test errors.Is(err, context.Canceled) and print a short message.
func contextError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// ConnectError says the daemon's socket (or, over HTTPS, its address)
// could not be dialled.
type ConnectError struct {
	Socket string
	// Addr is the HOST:PORT of a remote hangard, "" on the socket.
	Addr string
	Err  error
}

func (e *ConnectError) Error() string {
	where := e.Socket
	if e.Addr != "" {
		where = "https://" + e.Addr
	}
	return fmt.Sprintf("cannot connect to hangard at %s (is it running?): %v", where, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// parseResponse decodes an envelope and maps error envelopes to *Error.
// With a target, a sync envelope's metadata is decoded into it directly.
func parseResponse(resp *http.Response, target any) (*api.Response, string, error) {
	etag := resp.Header.Get("ETag")
	data, err := readBody(resp)
	if err != nil {
		if ctxErr := contextError(err); ctxErr != nil {
			return nil, "", ctxErr
		}
		return nil, "", fmt.Errorf("read response: %w", err)
	}
	if target != nil && resp.StatusCode < 400 {
		if r, ok := decodeSync(data, target); ok {
			return r, etag, nil
		}
	}
	var r api.Response
	if err := json.Unmarshal(data, &r); err != nil || r.Type == "" {
		if resp.StatusCode >= 400 {
			return nil, "", httpError(resp.StatusCode, data)
		}
		if err == nil {
			err = errors.New("no response type")
		}
		return nil, "", fmt.Errorf("invalid response from hangard (HTTP %d): %w", resp.StatusCode, err)
	}
	if r.Type == api.ErrorResponse || resp.StatusCode >= 400 {
		code := r.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		msg := r.Error
		if msg == "" {
			msg = http.StatusText(code)
		}
		return nil, "", &Error{StatusCode: code, Message: msg}
	}
	return &r, etag, nil
}

// readBody reads a whole body, in one allocation when the length is
// known (io.ReadAll grows its buffer by copying: a 1.5 MB list answer
// cost 4 MB that way).
func readBody(resp *http.Response) ([]byte, error) {
	const maxPrealloc = 64 << 20
	if n := resp.ContentLength; n > 0 && n <= maxPrealloc {
		buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
		_, err := buf.ReadFrom(resp.Body)
		return buf.Bytes(), err
	}
	return io.ReadAll(resp.Body)
}

// decodeSync decodes a sync envelope and its metadata into target in one
// pass over data. Through api.Response the body is scanned four times
// (validated, its metadata copied out, validated again, decoded): most of
// the client's time in a listing of 1000 instances with their state. For
// anything but a sync envelope it zeroes target and returns false, and the
// caller decodes the envelope as usual.
func decodeSync(data []byte, target any) (*api.Response, bool) {
	if raw, ok := target.(*json.RawMessage); ok {
		if r, ok := decodeSyncRaw(data, raw); ok {
			return r, true
		}
	}
	env := struct {
		Type       api.ResponseType `json:"type"`
		Status     string           `json:"status"`
		StatusCode int              `json:"status_code"`
		// A non-nil pointer in an interface is decoded into; null leaves
		// it alone, as decodeMetadata does.
		Metadata any `json:"metadata"`
	}{Metadata: target}
	if err := json.Unmarshal(data, &env); err != nil || env.Type != api.SyncResponse {
		reflect.ValueOf(target).Elem().SetZero()
		return nil, false
	}
	return &api.Response{Type: env.Type, Status: env.Status, StatusCode: env.StatusCode}, true
}

// httpError builds an *Error from a response that is not an envelope, such as
// a proxy's or a mux's plain-text 404.
func httpError(status int, body []byte) *Error {
	msg := strings.TrimSpace(string(body))
	if msg == "" || len(msg) > 512 || strings.ContainsAny(msg, "\n<") {
		msg = http.StatusText(status)
	}
	return &Error{StatusCode: status, Message: msg}
}

// queryStruct runs Query and decodes the metadata of a sync response into
// target (when not nil). A daemon that answers with an operation instead is
// waited for, so that callers of sync endpoints never see a half-done change.
func (c *Client) queryStruct(ctx context.Context, method, path string, body any, etag string, target any) (string, error) {
	r, newETag, err := c.query(ctx, method, path, body, etag, target)
	if err != nil {
		return "", err
	}
	if r.Type == api.AsyncResponse {
		op, err := c.newOperation(r)
		if err != nil {
			return "", err
		}
		return "", op.Wait(ctx)
	}
	// Metadata is empty when query decoded it already.
	if target != nil && r.Metadata != nil {
		if err := decodeMetadata(r, target); err != nil {
			return "", fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return newETag, nil
}

// queryOperation runs Query on an endpoint that LXD runs in the background and
// returns the operation. A daemon that finished the work synchronously gets a
// completed Operation, so callers can always Wait.
func (c *Client) queryOperation(ctx context.Context, method, path string, body any, etag string) (*Operation, error) {
	r, _, err := c.Query(ctx, method, path, body, etag)
	if err != nil {
		return nil, err
	}
	return c.responseOperation(r)
}

// responseOperation turns an envelope into an Operation handle.
func (c *Client) responseOperation(r *api.Response) (*Operation, error) {
	if r.Type == api.AsyncResponse {
		return c.newOperation(r)
	}
	return doneOperation(c, r), nil
}

// decodeMetadata unmarshals an envelope's metadata; null leaves target as is.
func decodeMetadata(r *api.Response, target any) error {
	if len(r.Metadata) == 0 || string(r.Metadata) == "null" {
		return nil
	}
	if err := json.Unmarshal(r.Metadata, target); err != nil {
		return fmt.Errorf("decode response metadata: %w", err)
	}
	return nil
}

// escape escapes one path segment (an instance, profile or alias name).
func escape(name string) string { return url.PathEscape(name) }

// namesFromURLs turns ["/1.0/instances/a", ...] into ["a", ...].
func namesFromURLs(urls []string, prefix string) []string {
	names := make([]string, 0, len(urls))
	for _, u := range urls {
		// Drop any query string (e.g. "?project=default").
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		name := strings.TrimPrefix(u, prefix)
		name = strings.TrimPrefix(name, "/")
		if unescaped, err := url.PathUnescape(name); err == nil {
			name = unescaped
		}
		names = append(names, name)
	}
	return names
}
