package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hangar-dev/hangar/api"
)

// detachKeys end an attached console, as lxc's: Ctrl-a then q.
var detachKeys = []byte{0x01, 'q'}

func newConsoleCmd(a *app) *cobra.Command {
	var showLog bool
	cmd := &cobra.Command{
		Use:   "console NAME",
		Short: "Attach to an instance's console, or show its log",
		Long: "Attach to an instance's console: its PID 1's output from now on, and input to\n" +
			"its standard input. Press Ctrl-a then q to detach.\n\n" +
			"A container's console is PID 1's stdio, not a terminal: programs see no tty.\n" +
			"--show-log prints the console log (everything PID 1 wrote) instead.",
		Example: "  hangar console c1\n  hangar console c1 --show-log",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if showLog {
				log, err := c.GetInstanceConsoleLog(ctx, args[0])
				if err != nil {
					return err
				}
				_, err = a.out.Write(log)
				return err
			}
			var post api.InstanceConsolePost
			outFd, outTerm := terminalFd(a.out)
			if outTerm {
				post.Width, post.Height, _ = term.GetSize(outFd)
			}
			inFd, inTerm := terminalFd(a.in)
			if inTerm {
				old, err := term.MakeRaw(inFd)
				if err != nil {
					return fmt.Errorf("terminal: %w", err)
				}
				defer term.Restore(inFd, old)
			}
			detach := make(chan struct{})
			in := &detachReader{r: a.in, detach: detach}
			con, err := c.AttachConsole(ctx, args[0], post, in, a.out)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.errOut, "To detach from the console, press: <ctrl>+a q\r\n")
			select {
			case <-detach:
			case <-con.Output():
			case <-ctx.Done():
			}
			return con.Detach(context.WithoutCancel(ctx))
		},
	}
	cmd.Flags().BoolVar(&showLog, "show-log", false, "print the console log instead of attaching")
	return cmd
}

// detachReader passes input through until the detach keys, which it
// swallows and reports by closing detach.
type detachReader struct {
	r       io.Reader
	detach  chan struct{}
	pending bool // the last byte read was Ctrl-a
	done    bool
}

func (d *detachReader) Read(p []byte) (int, error) {
	if d.done {
		return 0, io.EOF
	}
	if len(p) < 2 {
		return 0, io.ErrShortBuffer
	}
	// One byte of room for a held-back Ctrl-a.
	n, err := d.r.Read(p[:len(p)-1])
	buf := p[:n]
	if d.pending && n > 0 {
		d.pending = false
		if buf[0] == detachKeys[1] {
			d.finish()
			return 0, io.EOF
		}
		copy(p[1:n+1], buf)
		p[0] = detachKeys[0]
		n++
		buf = p[:n]
	}
	if i := bytes.Index(buf, detachKeys); i >= 0 {
		d.finish()
		return i, nil
	}
	if n > 0 && buf[n-1] == detachKeys[0] {
		// Held back until the next byte says whether it detaches.
		d.pending = true
		n--
	}
	return n, err
}

func (d *detachReader) finish() {
	d.done = true
	close(d.detach)
}
