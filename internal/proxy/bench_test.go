package proxy

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// The benchmarks compare a client going through a forwarder (host
// loopback -> forwarder -> the instance's loopback) with a direct
// loopback connection to the same server in the host's namespace.

// server returns where a benchmark's server runs: in an instance
// ("forwarded") or on the host side ("direct").
func server(b *testing.B, how string) *instance {
	b.Helper()
	if how == "forwarded" {
		return newInstance(b)
	}
	return host(b)
}

// dialer returns how a benchmark client connects to the server on port:
// through a forwarder listening on 127.0.0.1:8080 of the host, or
// straight to it.
func dialer(b *testing.B, in *instance, proto, how string, port string) func() net.Conn {
	b.Helper()
	addr := "127.0.0.1:" + port
	if how == "forwarded" {
		start(b, in, proto+":127.0.0.1:8080", proto+":"+addr)
		addr = "127.0.0.1:8080"
	}
	return func() net.Conn {
		c, err := net.Dial(proto, addr)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
}

// sink reads to the end and answers with the byte count, so that the
// client knows every byte arrived.
func sink(c *net.TCPConn) {
	// A large buffer: io.Discard reads 8 KiB at a time, which would make
	// the sink the bottleneck of both cases.
	buf := make([]byte, 1<<20)
	var n int64
	var err error
	for err == nil {
		var m int
		m, err = c.Read(buf)
		n += int64(m)
	}
	if err == io.EOF {
		binary.Write(c, binary.BigEndian, n)
	}
}

// BenchmarkTCPThroughput: one connection, 128 KiB writes.
func BenchmarkTCPThroughput(b *testing.B) {
	const chunk = 128 << 10
	for _, how := range []string{"direct", "forwarded"} {
		b.Run(how, func(b *testing.B) {
			in := server(b, how)
			in.listenTCP(b, "127.0.0.1:80", sink)
			c := dialer(b, in, "tcp", how, "80")()
			defer c.Close()
			buf := randomBytes(chunk)
			b.SetBytes(chunk)
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			var n int64
			if err := binary.Read(c, binary.BigEndian, &n); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n != int64(b.N)*chunk {
				b.Fatalf("the server got %d bytes of %d", n, int64(b.N)*chunk)
			}
		})
	}
}

// BenchmarkTCPConnect: a new connection per operation, one byte there
// and back: what a forwarder costs per connection (a thread to make the
// socket in the instance, the connect, two goroutines).
func BenchmarkTCPConnect(b *testing.B) {
	for _, how := range []string{"direct", "forwarded"} {
		b.Run(how, func(b *testing.B) {
			in := server(b, how)
			in.listenTCP(b, "127.0.0.1:80", echo)
			dial := dialer(b, in, "tcp", how, "80")
			one := make([]byte, 1)
			b.ResetTimer()
			for range b.N {
				c := dial()
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkUDPRoundTrip: 1 KiB datagrams there and back on one session.
func BenchmarkUDPRoundTrip(b *testing.B) {
	const size = 1 << 10
	for _, how := range []string{"direct", "forwarded"} {
		b.Run(how, func(b *testing.B) {
			in := server(b, how)
			in.listenUDP(b, "127.0.0.1:53", "")
			c := dialer(b, in, "udp", how, "53")()
			defer c.Close()
			msg, buf := randomBytes(size), make([]byte, maxDatagram)
			b.SetBytes(2 * size)
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if n, err := c.Read(buf); err != nil || n != size {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
		})
	}
}
