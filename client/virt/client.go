// Package virt is a small client of hangard's virt JSON-RPC API (the NAS
// middleware's virt.instance.* over a websocket at /api/current): calls,
// waiting for jobs, and collection_update subscriptions. It is written
// for hangard's tests and tools, not copied from the middleware's client.
package virt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// Error is a JSON-RPC error answer.
type Error struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *ErrorData `json:"data"`
}

// ErrorData is the middleware's error detail.
type ErrorData struct {
	Error   int     `json:"error"`
	Errname string  `json:"errname"`
	Reason  string  `json:"reason"`
	Extra   [][]any `json:"extra"`
}

func (e *Error) Error() string {
	if e.Data != nil {
		return fmt.Sprintf("%d %s: %s", e.Code, e.Data.Errname, e.Data.Reason)
	}
	return fmt.Sprintf("%d: %s", e.Code, e.Message)
}

// Attrs returns the attributes a validation error names.
func (e *Error) Attrs() []string {
	if e.Data == nil {
		return nil
	}
	var out []string
	for _, x := range e.Data.Extra {
		if len(x) > 0 {
			if s, ok := x[0].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// Update is one collection_update notification.
type Update struct {
	Msg        string         `json:"msg"`
	Collection string         `json:"collection"`
	ID         any            `json:"id"`
	Fields     map[string]any `json:"fields"`
}

// Client is one websocket session.
type Client struct {
	conn *websocket.Conn

	mu      sync.Mutex
	next    int64
	pending map[int64]chan reply
	updates chan Update
	err     error
	done    chan struct{}
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// Options say how to reach the server.
type Options struct {
	// Socket, when set, is the unix socket to dial (the URL's host is
	// then ignored).
	Socket string
	// TLS is the TLS configuration for wss:// URLs.
	TLS *tls.Config
	// Updates is the buffer of collection_update notifications (default
	// 65536); a reader that falls behind blocks the connection.
	Updates int
}

// Dial opens a session at url ("ws://unix/api/current",
// "wss://127.0.0.1:8443/api/current").
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	tr := &http.Transport{TLSClientConfig: o.TLS}
	if o.Socket != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", o.Socket)
		}
	}
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	n := o.Updates
	if n <= 0 {
		n = 65536
	}
	c := &Client{conn: conn, pending: map[int64]chan reply{}, updates: make(chan Update, n), done: make(chan struct{})}
	go c.read()
	return c, nil
}

// Close ends the session.
func (c *Client) Close() error { return c.conn.Close(websocket.StatusNormalClosure, "") }

// Updates yields collection_update notifications of every subscription.
func (c *Client) Updates() <-chan Update { return c.updates }

func (c *Client) read() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			close(c.updates)
			return
		}
		// One decoding pass: notifications are collection_update.
		var m struct {
			ID     *int64  `json:"id"`
			Method string  `json:"method"`
			Params *Update `json:"params"`
			reply
		}
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m.Method == "collection_update" && m.Params != nil {
			c.updates <- *m.Params
			continue
		}
		if m.ID == nil {
			continue
		}
		c.mu.Lock()
		ch := c.pending[*m.ID]
		delete(c.pending, *m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m.reply
		}
	}
}

// Call calls method with params and decodes the result into out (may be
// nil). A JSON-RPC error is an *Error.
func (c *Client) Call(ctx context.Context, out any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: connection closed: %v", method, c.err)
		}
		if r.Error != nil {
			return r.Error
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Raw sends one text message as it is (tests of malformed requests) and
// returns the next answer without an id match.
func (c *Client) Raw(ctx context.Context, msg string) error {
	return c.conn.Write(ctx, websocket.MessageText, []byte(msg))
}

// Job calls a method that answers a job id and waits for the job
// (core.job_wait): its result into out, or its error.
func (c *Client) Job(ctx context.Context, out any, method string, params ...any) error {
	var id int64
	if err := c.Call(ctx, &id, method, params...); err != nil {
		return err
	}
	return c.Call(ctx, out, "core.job_wait", id)
}

// Subscribe subscribes to a collection ("virt.instance.query",
// "core.get_jobs"); updates arrive on Updates.
func (c *Client) Subscribe(ctx context.Context, name string) (string, error) {
	var id string
	err := c.Call(ctx, &id, "core.subscribe", name)
	return id, err
}

// Unsubscribe ends a subscription.
func (c *Client) Unsubscribe(ctx context.Context, id string) error {
	return c.Call(ctx, nil, "core.unsubscribe", id)
}
