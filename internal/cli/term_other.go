//go:build !linux

package cli

import "io"

// isTerminal is only implemented on Linux, hangar's platform; elsewhere
// stdin is always read as a file, never handed to an editor.
func isTerminal(io.Reader) bool { return false }
