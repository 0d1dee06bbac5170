package e2e

import (
	"context"
	"net"
	"net/http"

	"github.com/hangar-dev/hangar/internal/netdev"
)

// inNetns runs fn on a thread inside the network namespace at path.
func inNetns(path string, fn func() error) error { return netdev.InNetNS(path, fn) }

// listenIn listens on a TCP address inside a network namespace.
func listenIn(netns, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(netns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// transportIn is an HTTP transport whose connections start inside a
// network namespace.
func transportIn(netns string) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNetns(netns, func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return t
}
