package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/hangar-dev/hangar/api"
)

// maxEventSize bounds one event message; lifecycle events are small, but an
// operation event carries the whole operation and its metadata.
const maxEventSize = 16 << 20

// EventListener delivers the events of one /1.0/events websocket.
type EventListener struct {
	conn   *websocket.Conn
	events chan api.Event
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	err error
}

// GetEvents subscribes to the daemon's events. types filters by event type
// (api.EventTypeLifecycle, ...; none means all). since, when not zero, asks
// the daemon to first replay the events with a sequence greater than since
// (hangar_event_sequence), so that a client that reconnects misses nothing.
// The listener lives until ctx is done, Close is called or the connection
// drops; then Events' channel is closed and Err tells why.
func (c *Client) GetEvents(ctx context.Context, types []string, since uint64) (*EventListener, error) {
	q := url.Values{}
	if len(types) > 0 {
		q.Set("type", strings.Join(types, ","))
	}
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	u := c.wsBase + "/1.0/events"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	u = c.inProject(u)

	ctx, cancel := context.WithCancel(ctx)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		// The client's own transport dials the unix socket.
		HTTPClient: c.http,
		HTTPHeader: c.headers(),
	})
	if err != nil {
		cancel()
		return nil, c.eventsDialError(err, resp)
	}
	conn.SetReadLimit(maxEventSize)

	l := &EventListener{
		conn:   conn,
		events: make(chan api.Event, 64),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go l.read(ctx)
	return l, nil
}

// eventsDialError prefers the daemon's error envelope over the websocket
// library's "expected handshake response status code 101 but got 404".
func (c *Client) eventsDialError(err error, resp *http.Response) error {
	if resp != nil && resp.StatusCode >= 400 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r api.Response
		if json.Unmarshal(body, &r) == nil && r.Error != "" {
			code := r.ErrorCode
			if code == 0 {
				code = resp.StatusCode
			}
			return &Error{StatusCode: code, Message: r.Error}
		}
		return httpError(resp.StatusCode, body)
	}
	if ctxErr := contextError(err); ctxErr != nil {
		return ctxErr
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return c.wrapTransportError(http.MethodGet, "/1.0/events", urlErr)
	}
	return fmt.Errorf("connect to events: %w", err)
}

func (l *EventListener) read(ctx context.Context) {
	defer close(l.done)
	defer close(l.events)
	for {
		typ, data, err := l.conn.Read(ctx)
		if err != nil {
			// Our own Close or the caller's context is not an error; the
			// daemon going away is.
			if ctx.Err() == nil && websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				l.setErr(fmt.Errorf("event stream: %w", err))
			}
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var ev api.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			l.setErr(fmt.Errorf("decode event: %w", err))
			l.conn.Close(websocket.StatusUnsupportedData, "invalid event")
			return
		}
		select {
		case l.events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

func (l *EventListener) setErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

// Events returns the channel events arrive on, in order. It is closed when
// the listener ends.
func (l *EventListener) Events() <-chan api.Event { return l.events }

// Err returns why the listener ended: nil after Close or when its context
// was done, the connection error otherwise. Call it after Events is closed.
func (l *EventListener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Done is closed when the listener has ended.
func (l *EventListener) Done() <-chan struct{} { return l.done }

// Close ends the subscription and waits for the reader to stop.
func (l *EventListener) Close() error {
	l.cancel()
	// Cancelling the read context makes the library close the connection;
	// CloseNow makes sure of it without waiting for the peer's close frame.
	_ = l.conn.CloseNow()
	<-l.done
	return nil
}
