// Command printlines prints numbered lines on stdout as fast as it can:
// the workload of the app log throughput benchmark (applog_bench_test.go).
//
//	printlines MB [SINK]
//
// Each line is "L<10-digit number> " and filler to 100 bytes with its
// newline; after MB MiB of them it prints "END <lines> <nanoseconds>",
// the time the guest took to write them. With SINK (e.g. /dev/null) the
// lines go there and only the END line to stdout: how fast the guest
// makes them, with no console in the way.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"
)

const lineLen = 100

func main() {
	mb, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage: printlines MB")
		os.Exit(2)
	}
	n := mb << 20 / lineLen
	out := os.Stdout
	if len(os.Args) > 2 {
		f, err := os.OpenFile(os.Args[2], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out = f
	}
	w := bufio.NewWriterSize(out, 256<<10)
	line := make([]byte, lineLen)
	for i := range line {
		line[i] = 'a' + byte(i%26)
	}
	line[0], line[11], line[lineLen-1] = 'L', ' ', '\n'
	copy(line[1:11], "0000000000")
	start := time.Now()
	for range n {
		w.Write(line)
		// The next number, by carrying in place: under TCG a division
		// per digit would cost more than the write.
		for j := 10; j >= 1; j-- {
			if line[j] != '9' {
				line[j]++
				break
			}
			line[j] = '0'
		}
	}
	w.Flush()
	fmt.Printf("END %d %d\n", n, time.Since(start).Nanoseconds())
}
