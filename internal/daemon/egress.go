package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/egress"
	"github.com/hangar-dev/hangar/internal/network"
)

// egressProxy is the daemon's egress proxy (package egress): one port
// for every bridge, chosen at start (IPv4 and, where the host has it,
// IPv6 on the same number); the firewall's egress rules redirect to it
// and are rebuilt with it when the daemon recovers. Its CA lives in
// DATADIR/egress (ca.crt, ca.key 0600).
type egressProxy struct {
	ca    *egress.CA
	proxy *egress.Proxy
	port  uint16
}

// egressResolver maps a source address to its instance (the network
// manager's egress rules) and the instance to its policy (the core).
type egressResolver struct {
	networks *network.Manager
	policy   func(ctx context.Context, id int64) (egress.Policy, bool, error)
}

func (r egressResolver) Policy(ctx context.Context, src netip.Addr) (egress.Policy, bool, error) {
	id, ok := r.networks.EgressInstance(src)
	if !ok {
		return egress.Policy{}, false, nil
	}
	return r.policy(ctx, id)
}

func startEgress(dataDir string, res egress.Resolver, log *slog.Logger) (*egressProxy, error) {
	ca, err := egress.LoadOrCreateCA(filepath.Join(dataDir, "egress"))
	if err != nil {
		return nil, err
	}
	ln4, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	port := uint16(ln4.Addr().(*net.TCPAddr).Port)
	p := egress.New(egress.Options{Resolver: res, CA: ca, Log: log})
	go func() {
		if err := p.Serve(ln4); err != nil {
			log.Error("egress proxy", "err", err)
		}
	}()
	// IPv6 on its own socket (tcp6 is IPv6-only in Go): SO_ORIGINAL_DST
	// is per family.
	if ln6, err := net.Listen("tcp6", fmt.Sprintf("[::]:%d", port)); err == nil {
		go func() {
			if err := p.Serve(ln6); err != nil {
				log.Error("egress proxy", "err", err)
			}
		}()
	} else {
		log.Info("egress proxy: no IPv6 listener", "err", err)
	}
	log.Info("egress proxy listening", "port", port)
	return &egressProxy{ca: ca, proxy: p, port: port}, nil
}

func (e *egressProxy) Close() error {
	if e == nil {
		return nil
	}
	return e.proxy.Close()
}
