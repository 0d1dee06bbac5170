package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/trust"
)

// httpsListener serves the API over TLS on core.https_address (or, while
// that is unset, the --https flag's address), and moves when the key
// changes. Clients authenticate with their certificate: it is requested,
// never required, since an untrusted client must reach / and /1.0 and
// redeem a token; the trust store decides who it is (package edge).
type httpsListener struct {
	flagAddr string
	cert     *trust.ServerCert
	log      *slog.Logger

	mu      sync.Mutex
	handler http.Handler
	want    string // the configured address
	srv     *http.Server
	bound   net.Addr // what srv listens on, nil when closed
	done    chan struct{}
}

func newHTTPSListener(flagAddr string, cert *trust.ServerCert, log *slog.Logger) *httpsListener {
	return &httpsListener{flagAddr: flagAddr, cert: cert, log: log}
}

func (h *httpsListener) tlsConfig() *tls.Config {
	return &tls.Config{
		// TLS 1.2 at least: older versions have known weaknesses, and
		// every lxc speaks 1.2 and 1.3.
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{h.cert.TLS},
		ClientAuth:   tls.RequestClientCert,
	}
}

// SetHandler sets what the listener serves; before the first Set.
func (h *httpsListener) SetHandler(handler http.Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handler = handler
}

// Set is core.https_address's hook: it listens on value, or on the
// --https address when value is "", or nowhere when both are empty. An
// address that cannot be bound is an error and the old listener stays.
func (h *httpsListener) Set(ctx context.Context, value string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	addr := cmp.Or(value, h.flagAddr)
	if addr == h.want && (addr == "" || h.srv != nil) {
		return nil
	}
	old, oldAddr := h.srv, h.want
	// Closing first frees the port when only the host part changes;
	// should the new address fail, the old one is opened again.
	h.closeLocked()
	if addr == "" {
		h.want = ""
		return nil
	}
	if err := h.openLocked(addr); err != nil {
		if old != nil {
			if rerr := h.openLocked(oldAddr); rerr != nil {
				h.log.Error("https: could not listen again on the previous address", "address", oldAddr, "err", rerr)
			}
		}
		return err
	}
	h.want = addr
	return nil
}

func (h *httpsListener) openLocked(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h.handler,
		TLSConfig:         h.tlsConfig(),
		ReadHeaderTimeout: 30 * time.Second,
		// Failed handshakes (a scanner, TLS 1.1) are not daemon errors.
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("https: serve", "address", addr, "err", err)
		}
	}()
	h.srv, h.bound, h.done = srv, ln.Addr(), done
	h.log.Info("serving the API over https", "address", ln.Addr().String(), "fingerprint", h.cert.Fingerprint)
	return nil
}

// closeLocked stops the listener and the connections it serves (exec and
// console streams included: moving the API moves its clients).
func (h *httpsListener) closeLocked() {
	if h.srv == nil {
		return
	}
	_ = h.srv.Close()
	<-h.done
	h.log.Info("stopped serving the API over https", "address", h.bound.String())
	h.srv, h.bound, h.done = nil, nil, nil
}

// Shutdown stops serving, letting requests in flight finish until ctx
// ends.
func (h *httpsListener) Shutdown(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv == nil {
		return
	}
	_ = h.srv.Shutdown(ctx)
	h.closeLocked()
}

// Addresses returns where the API is served over https, as clients reach
// it: a wildcard host stands for every address of the host's interfaces.
func (h *httpsListener) Addresses() []string {
	h.mu.Lock()
	bound := h.bound
	h.mu.Unlock()
	if bound == nil {
		return []string{}
	}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return []string{bound.String()}
	}
	port := strconv.Itoa(tcp.Port)
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return []string{bound.String()}
	}
	var out []string
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsLoopback() {
			continue
		}
		if tcp.IP.To4() != nil && ipn.IP.To4() == nil {
			continue // bound to 0.0.0.0: IPv4 only
		}
		out = append(out, net.JoinHostPort(ipn.IP.String(), port))
	}
	if len(out) == 0 {
		out = append(out, net.JoinHostPort("127.0.0.1", port))
	}
	return out
}
