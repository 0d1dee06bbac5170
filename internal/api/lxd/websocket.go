package lxd

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"

	"github.com/coder/websocket"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/operation"
)

// A websocket operation (exec, console) hands out one secret per stream in
// its metadata; clients connect to GET /1.0/operations/{id}/websocket with
// ?secret=. sockets maps the operation to what accepts those connections.
type sockets struct {
	mu  sync.Mutex
	ops map[string]*socketSet
}

func (t *sockets) add(opID string, set *socketSet) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ops == nil {
		t.ops = map[string]*socketSet{}
	}
	t.ops[opID] = set
}

func (t *sockets) remove(opID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.ops, opID)
}

func (t *sockets) get(opID string) *socketSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ops[opID]
}

// socketSet is the named streams of one operation ("0", "1", "2",
// "control"), each with its secret and, once a client connected, its
// connection.
type socketSet struct {
	secrets  map[string]string
	required map[string]bool // streams the operation waits for before it runs

	mu    sync.Mutex
	conns map[string]*websocket.Conn
	ready chan struct{} // closed when every required stream is connected
	done  chan struct{} // closed when the operation is over with its sockets
	once  sync.Once
}

func newSocketSet(names []string, required map[string]bool) (*socketSet, error) {
	set := &socketSet{
		secrets:  map[string]string{},
		required: required,
		conns:    map[string]*websocket.Conn{},
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, n := range names {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		set.secrets[n] = hex.EncodeToString(b)
	}
	return set, nil
}

// fds is the "fds" metadata of the operation: stream name → secret.
func (set *socketSet) fds() map[string]any {
	out := make(map[string]any, len(set.secrets))
	for n, s := range set.secrets {
		out[n] = s
	}
	return out
}

// conn returns a stream's connection, or nil.
func (set *socketSet) conn(name string) *websocket.Conn {
	set.mu.Lock()
	defer set.mu.Unlock()
	return set.conns[name]
}

// finish closes every connection and releases the handlers holding them.
func (set *socketSet) finish() {
	set.once.Do(func() {
		set.mu.Lock()
		for _, c := range set.conns {
			// The close handshake waits for the client (up to 5 s):
			// nobody waits for it.
			go c.Close(websocket.StatusNormalClosure, "")
		}
		set.mu.Unlock()
		close(set.done)
	})
}

// accept upgrades the request to the stream whose secret it carries and
// holds the handler until the operation is over: the connection belongs to
// the operation, which reads and writes it.
func (set *socketSet) accept(w http.ResponseWriter, r *http.Request, secret string) error {
	name := ""
	for n, s := range set.secrets {
		if subtle.ConstantTimeCompare([]byte(s), []byte(secret)) == 1 {
			name = n
		}
	}
	if name == "" {
		return errdefs.Forbidden("wrong websocket secret")
	}
	set.mu.Lock()
	if set.conns[name] != nil {
		set.mu.Unlock()
		return errdefs.Conflict("websocket %q is already connected", name)
	}
	select {
	case <-set.done:
		set.mu.Unlock()
		return errdefs.Conflict("operation is over")
	default:
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		set.mu.Unlock()
		return nil // Accept answered the client
	}
	// Exec output can be large: no per-message limit on what clients send.
	conn.SetReadLimit(-1)
	set.conns[name] = conn
	all := true
	for n := range set.required {
		all = all && set.conns[n] != nil
	}
	if all {
		select {
		case <-set.ready:
		default:
			close(set.ready)
		}
	}
	set.mu.Unlock()
	<-set.done
	return nil
}

// getOperationWebsocket connects a client to one stream of a websocket
// operation.
func (s *Server) getOperationWebsocket(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	op, err := s.Ops.Get(id)
	if err != nil {
		writeError(w, err)
		return
	}
	set := s.sockets.get(id)
	if set == nil && op.StatusCode.IsFinal() {
		// Late: the operation ended (a command that failed to start, say)
		// before this stream connected. Its error is the useful answer.
		writeError(w, errdefs.Invalid("operation %s has ended: %s", id, cmp.Or(op.Err, op.Status)))
		return
	}
	if set == nil {
		writeError(w, errdefs.Invalid("operation %q has no websockets", id))
		return
	}
	secret := r.URL.Query().Get("secret")
	if secret == "" {
		writeError(w, errdefs.Invalid("missing secret"))
		return
	}
	if err := set.accept(w, r, secret); err != nil {
		writeError(w, err)
	}
}

// startSocketOp starts a websocket operation whose streams are set's and
// answers 202; ctx is the request's. run gets the operation once its streams can be connected
// to; the streams are closed when it returns, whatever it did with them.
func (s *Server) startSocketOp(ctx context.Context, w http.ResponseWriter, description, instance string, set *socketSet, md map[string]any, run func(ctx context.Context, op *operation.Op) error) {
	md["fds"] = set.fds()
	start := make(chan struct{})
	op := s.Ops.Start(operation.Spec{
		Context:     ctx,
		Class:       api.OperationClassWebsocket,
		Description: description,
		Resources:   instanceResources(s.typeOf(ctx, instance), instance),
		Metadata:    md,
		Run: func(ctx context.Context, op *operation.Op) error {
			<-start // the socket table knows the operation
			defer s.sockets.remove(op.ID())
			defer set.finish()
			return run(ctx, op)
		},
	})
	s.sockets.add(op.ID(), set)
	close(start)
	writeAsync(w, op.Snapshot())
}
