//go:build tools

// Package tools pins the modules the tree uses before code imports them, so
// that parallel work never edits go.mod at the same time. Removed once every
// module is imported by real code.
package tools

import (
	_ "github.com/coder/websocket"
	_ "github.com/containerd/go-runc"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/google/uuid"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/spf13/cobra"
	_ "github.com/ulikunitz/xz"
	_ "golang.org/x/sys/unix"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
