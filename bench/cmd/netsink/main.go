// Command netsink is the server peerbench's network figures (bench/run
// --issue11) run inside the containers, started by the image's init: one
// static binary, so that the same server answers in every peer's
// container whatever its userland.
//
//   - On the probe port (default 8080) it writes one byte, "!", and closes:
//     a connect that reads it is what "reachable" means, through a
//     forwarder too (which accepts before it knows whether the container
//     answers).
//   - On the sink port (default 5001) it reads each connection to its end
//     and answers with the number of bytes it read (8 bytes, big-endian),
//     so that the sender knows every byte arrived: the load generator's
//     throughput is bytes / time to that answer.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	probe := flag.String("probe", ":8080", "address that accepts and closes")
	sink := flag.String("sink", ":5001", "address that reads to the end and answers with the byte count")
	flag.Parse()
	pl, err := net.Listen("tcp", *probe)
	if err != nil {
		fmt.Fprintln(os.Stderr, "netsink:", err)
		os.Exit(1)
	}
	sl, err := net.Listen("tcp", *sink)
	if err != nil {
		fmt.Fprintln(os.Stderr, "netsink:", err)
		os.Exit(1)
	}
	go serve(pl, func(c net.Conn) {
		_, _ = c.Write([]byte("!"))
		c.Close()
	})
	serve(sl, drain)
}

func serve(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "netsink:", err)
			os.Exit(1)
		}
		go handle(c)
	}
}

// drain reads c to its end with a large buffer (io.Discard's 8 KiB reads
// would make the sink the bottleneck) and answers with the count.
func drain(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], uint64(n))
	_, _ = c.Write(out[:])
}
