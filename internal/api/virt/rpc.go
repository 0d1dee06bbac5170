package virt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/project"
)

const (
	// maxMessage bounds one request (a create with its devices and
	// environment is a few KiB).
	maxMessage = 1 << 20
	// maxConcurrent bounds the calls one session runs at once (the
	// middleware's hard limit); more is codeTooManyCalls.
	maxConcurrent = 20
	// outBuffer is how many messages may wait for a slow client before
	// its connection is closed (events are never dropped silently).
	outBuffer = 16384
)

// role is what a method or an event subscription needs.
type role int

const (
	rolePublic role = iota // no login needed (auth.*, core.ping)
	roleAuth               // any authenticated session
	roleRead               // VIRT_INSTANCE_READ
	roleWrite              // VIRT_INSTANCE_WRITE
)

func (r role) String() string {
	switch r {
	case roleRead:
		return "VIRT_INSTANCE_READ"
	case roleWrite:
		return "VIRT_INSTANCE_WRITE"
	}
	return ""
}

// session is one websocket connection: its identity (after a login),
// its project, its subscriptions.
type session struct {
	s      *Server
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	addr   string
	out    chan []byte
	sem    chan struct{}

	mu sync.Mutex
	id auth.Identity // Trusted() once authenticated
	// loginAt is when the user login that made id began: a user deleted
	// or with a password changed since is logged out (Users.SessionValid).
	loginAt time.Time
	proj    project.Project
	subs    map[string]string // subscription id -> collection
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	// The default origin check stays: a browser page of another origin
	// must not ride on a client certificate the browser would present.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log().Debug("virt api: websocket accept", "err", err)
		return
	}
	conn.SetReadLimit(maxMessage)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	sess := &session{s: s, conn: conn, ctx: ctx, cancel: cancel, addr: r.RemoteAddr,
		out: make(chan []byte, outBuffer), sem: make(chan struct{}, maxConcurrent), subs: map[string]string{}}
	// Whoever the transport proves is logged in already: the unix
	// socket's root (as the middleware's own socket), a trusted client
	// certificate or a bearer token. Others must call auth.*.
	if id := auth.From(r.Context()); id.Trusted() {
		if err := sess.login(id, time.Now()); err != nil {
			s.log().Warn("virt api: session identity", "err", err)
		}
	}
	defer sess.close()
	go sess.writer()
	sess.reader()
}

func (c *session) close() {
	c.cancel()
	if w := c.s.watch.Load(); w != nil {
		w.drop(c)
	}
	_ = c.conn.CloseNow()
}

// login makes id, which logged in at loginAt, the session's identity.
func (c *session) login(id auth.Identity, loginAt time.Time) error {
	id.Address = c.addr
	p, err := c.s.projectOf(c.ctx, id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.id, c.proj, c.loginAt = id, p, loginAt
	c.mu.Unlock()
	return nil
}

// callCtx carries the session's identity and project to the core.
func (c *session) callCtx() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return project.WithProject(auth.WithIdentity(c.ctx, c.id), c.proj)
}

func (c *session) authenticated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id.Kind == auth.KindUser && (c.s.Users == nil || !c.s.Users.SessionValid(c.id.Name, c.loginAt)) {
		// The user was deleted or its password changed: logged out.
		c.id = auth.Identity{Kind: auth.KindUntrusted}
	}
	return c.id.Trusted()
}

// allowed tells whether the session holds r: READ is viewing the
// instances of its project, WRITE managing them.
func (c *session) allowed(r role) bool {
	if r == rolePublic {
		return true
	}
	if !c.authenticated() {
		return false
	}
	return c.s.holds(c.callCtx(), r)
}

func (s *Server) holds(ctx context.Context, r role) bool {
	if s.Authz == nil || r <= roleAuth {
		return true
	}
	p := auth.Project(project.Name(ctx))
	if r == roleRead {
		return s.Authz.Allowed(ctx, p, auth.CanView)
	}
	return s.Authz.Allowed(ctx, p, auth.CanManageInstances)
}

func (c *session) writer() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case b := <-c.out:
			// No deadline of its own: a client that stops reading lets
			// out fill, and send then ends the session, which ends this
			// write.
			if err := c.conn.Write(c.ctx, websocket.MessageText, b); err != nil {
				c.cancel()
				return
			}
		}
	}
}

// send queues b; a client that lets outBuffer messages pile up is cut
// off rather than silently missing events.
func (c *session) send(b []byte) {
	select {
	case <-c.ctx.Done():
	case c.out <- b:
	default:
		c.s.log().Warn("virt api: client too slow, closing its connection", "source", c.addr)
		_ = c.conn.Close(websocket.StatusPolicyViolation, "too slow")
		c.cancel()
	}
}

func (c *session) sendJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.s.log().Error("virt api: encode", "err", err)
		return
	}
	c.send(b)
}

// request is a JSON-RPC 2.0 request.
type request struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id,omitempty"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result"`
}

type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   *rpcError       `json:"error"`
}

var null = json.RawMessage("null")

func (c *session) reply(id json.RawMessage, result any) {
	if id == nil {
		return // a notification: no answer
	}
	c.sendJSON(response{JSONRPC: "2.0", ID: id, Result: result})
}

func (c *session) replyErr(id json.RawMessage, e *rpcError) {
	if id == nil {
		id = null
	}
	c.sendJSON(errorResponse{JSONRPC: "2.0", ID: id, Error: e})
}

func (c *session) reader() {
	for {
		typ, b, err := c.conn.Read(c.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			_ = c.conn.Close(websocket.StatusUnsupportedData, "text messages only")
			return
		}
		c.handle(b)
	}
}

func (c *session) handle(b []byte) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		c.replyErr(nil, &rpcError{Code: codeParse, Message: "Parse error: " + err.Error()})
		return
	}
	var req request
	for k := range raw {
		switch k {
		case "jsonrpc", "id", "method", "params":
		default:
			c.replyErr(raw["id"], &rpcError{Code: codeInvalidRequest, Message: "Additional properties are not allowed ('" + k + "' was unexpected)"})
			return
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&req); err != nil || req.JSONRPC != "2.0" || req.Method == "" || !validID(req.ID) {
		msg := "Invalid request: jsonrpc must be \"2.0\", method a string, params an array, id a number, string or null"
		c.replyErr(raw["id"], &rpcError{Code: codeInvalidRequest, Message: msg})
		return
	}
	m, ok := methods[req.Method]
	if !ok {
		c.replyErr(req.ID, &rpcError{Code: codeNoMethod, Message: "Method does not exist"})
		return
	}
	select {
	case c.sem <- struct{}{}:
	default:
		c.replyErr(req.ID, &rpcError{Code: codeTooManyCalls, Message: "Maximum number of concurrent calls (20) has exceeded"})
		return
	}
	go func() {
		defer func() { <-c.sem }()
		c.call(req, m)
	}()
}

func validID(id json.RawMessage) bool {
	if id == nil {
		return true
	}
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// call runs one method: the login and role checks, then the method;
// mutating and denied calls go to the audit log.
func (c *session) call(req request, m method) {
	start := time.Now()
	var res any
	var err error
	switch {
	case m.role > rolePublic && !c.authenticated():
		err = errNotAuthenticated
	case !c.allowed(m.role):
		err = errNotAuthorized
	default:
		res, err = m.fn(c.callCtx(), c, &args{method: req.Method, params: req.Params})
	}
	denied := errors.Is(err, errNotAuthenticated) || errors.Is(err, errNotAuthorized)
	if denied || m.role == roleWrite {
		c.auditCall(req.Method, err, denied, time.Since(start))
	}
	if err != nil {
		c.replyErr(req.ID, toRPCError(req.Method, err, c.s.log()))
		return
	}
	c.reply(req.ID, res)
}

func (c *session) auditCall(method string, err error, denied bool, took time.Duration) {
	c.mu.Lock()
	id, p := c.id, c.proj.Name
	c.mu.Unlock()
	level, outcome := slog.LevelInfo, "ok"
	if denied {
		level = slog.LevelWarn
	}
	if err != nil {
		outcome = err.Error()
	}
	c.s.audit().LogAttrs(c.ctx, level, "call",
		slog.String("identity_kind", string(id.Kind)),
		slog.String("identity", id.Name),
		slog.String("source", c.addr),
		slog.String("project", p),
		slog.String("method", method),
		slog.String("outcome", outcome),
		slog.Duration("took", took),
	)
}
