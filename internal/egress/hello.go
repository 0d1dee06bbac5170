package egress

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

const (
	recordTypeHandshake = 0x16
	recordHeaderLen     = 5
	// maxHelloRecord is the largest TLS record (2^14 plus the header and
	// the expansion TLS 1.2 allows): a ClientHello is read whole from one.
	maxHelloRecord = recordHeaderLen + 16384 + 2048
)

// errHelloRead stops the handshake once the ClientHello is read.
var errHelloRead = errors.New("client hello read")

// peekServerName reads the ClientHello in the first TLS record of br
// without consuming it and returns its server name ("" when it has none).
// crypto/tls parses it, on a copy, so no parser of ours meets hostile
// bytes.
func peekServerName(br *bufio.Reader) (string, error) {
	hdr, err := br.Peek(recordHeaderLen)
	if err != nil {
		return "", fmt.Errorf("record header: %w", err)
	}
	if hdr[0] != recordTypeHandshake || hdr[1] != 3 {
		return "", errors.New("not a TLS handshake record")
	}
	n := int(hdr[3])<<8 | int(hdr[4])
	if n == 0 || recordHeaderLen+n > maxHelloRecord {
		return "", fmt.Errorf("record of %d bytes", n)
	}
	rec, err := br.Peek(recordHeaderLen + n)
	if err != nil {
		return "", fmt.Errorf("record: %w", err)
	}
	var sni string
	var seen bool
	srv := tls.Server(&helloConn{r: bytes.NewReader(bytes.Clone(rec))}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni, seen = h.ServerName, true
			return nil, errHelloRead
		},
	})
	err = srv.Handshake()
	if !seen {
		return "", fmt.Errorf("client hello: %w", err)
	}
	return sni, nil
}

// helloConn feeds recorded bytes to crypto/tls and swallows what it
// writes (an alert, at most).
type helloConn struct{ r io.Reader }

func (c *helloConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *helloConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *helloConn) Close() error                     { return nil }
func (c *helloConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *helloConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *helloConn) SetDeadline(time.Time) error      { return nil }
func (c *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(time.Time) error { return nil }
