package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// File types of the files API.
const (
	FileTypeFile      = "file"
	FileTypeDirectory = "directory"
	FileTypeSymlink   = "symlink"
)

// InstanceFile describes what GetInstanceFile found, from LXD's X-LXD-*
// headers. Ids are inside the instance.
type InstanceFile struct {
	// Type is FileTypeFile, FileTypeDirectory or FileTypeSymlink.
	Type string
	UID  int64
	GID  int64
	// Mode holds the permission bits (LXD reports no others).
	Mode os.FileMode
	// ModTime is the last modification, zero if the daemon sent none.
	ModTime time.Time
	// Size is a file's length, -1 when unknown.
	Size int64
	// Entries are a directory's names.
	Entries []string
	// Target is a symlink's target, an absolute path inside the instance.
	Target string
}

// InstanceFileArgs describes what CreateInstanceFile makes. The zero value
// (beside Content) is a file owned by the instance's root with the
// daemon's default mode.
type InstanceFileArgs struct {
	// Type is FileTypeFile (when empty), FileTypeDirectory or FileTypeSymlink.
	Type string
	// Content is a file's data or a symlink's target; unused for a
	// directory. An *os.File is streamed with its size as Content-Length.
	Content io.Reader
	// UID and GID own what is created (ids inside the instance, 0 is the
	// instance's root). Existing files and directories keep their owner.
	UID, GID uint32
	// Mode is given to what is created; 0 means the daemon's default
	// (0644 for files, 0750 for directories, as LXD).
	Mode os.FileMode
	// Append adds Content to the end of an existing file instead of
	// replacing the file (X-LXD-write: append).
	Append bool
}

// GetInstanceFile reads path inside the instance without following a
// symlink in last place. A file's content is returned as a stream the
// caller must close; a directory has no stream, its names are in Entries;
// a symlink's stream holds its target, also in Target.
func (c *Client) GetInstanceFile(ctx context.Context, name, path string) (io.ReadCloser, *InstanceFile, error) {
	resp, err := c.do(ctx, http.MethodGet, filesPath(name, path), nil, -1, nil)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		_, _, err := parseResponse(resp, nil)
		return nil, nil, err
	}
	info, err := fileHeaders(resp)
	if err != nil {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("get %s in %s: %w", path, name, err)
	}
	switch info.Type {
	case FileTypeDirectory:
		defer resp.Body.Close()
		r, _, err := parseResponse(resp, nil)
		if err != nil {
			return nil, nil, err
		}
		if err := decodeMetadata(r, &info.Entries); err != nil {
			return nil, nil, fmt.Errorf("list %s in %s: %w", path, name, err)
		}
		return nil, info, nil
	case FileTypeSymlink:
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return nil, nil, fmt.Errorf("read symlink %s in %s: %w", path, name, err)
		}
		info.Target = string(b)
		return io.NopCloser(strings.NewReader(info.Target)), info, nil
	}
	return resp.Body, info, nil
}

// fileHeaders reads the X-LXD-* headers of a files API answer.
func fileHeaders(resp *http.Response) (*InstanceFile, error) {
	h := resp.Header
	info := &InstanceFile{Type: h.Get("X-LXD-type"), Size: resp.ContentLength}
	if info.Type == "" {
		info.Type = FileTypeFile
	}
	var err error
	if info.UID, err = strconv.ParseInt(h.Get("X-LXD-uid"), 10, 64); err != nil {
		return nil, fmt.Errorf("bad X-LXD-uid %q", h.Get("X-LXD-uid"))
	}
	if info.GID, err = strconv.ParseInt(h.Get("X-LXD-gid"), 10, 64); err != nil {
		return nil, fmt.Errorf("bad X-LXD-gid %q", h.Get("X-LXD-gid"))
	}
	m, err := strconv.ParseUint(h.Get("X-LXD-mode"), 8, 32)
	if err != nil {
		return nil, fmt.Errorf("bad X-LXD-mode %q", h.Get("X-LXD-mode"))
	}
	info.Mode = os.FileMode(m).Perm()
	// LXD sends Go's time.Time.String form.
	if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", h.Get("X-LXD-modified")); err == nil {
		info.ModTime = t
	}
	return info, nil
}

// CreateInstanceFile creates or replaces a file, makes a directory (an
// existing one is left as it is) or makes a symlink (the same one already
// there is fine) at path inside the instance.
func (c *Client) CreateInstanceFile(ctx context.Context, name, path string, args InstanceFileArgs) error {
	header := http.Header{}
	header.Set("Content-Type", "application/octet-stream")
	if args.Type != "" {
		header.Set("X-LXD-type", args.Type)
	}
	if args.UID != 0 {
		header.Set("X-LXD-uid", strconv.FormatUint(uint64(args.UID), 10))
	}
	if args.GID != 0 {
		header.Set("X-LXD-gid", strconv.FormatUint(uint64(args.GID), 10))
	}
	if m := unixMode(args.Mode); m != 0 {
		header.Set("X-LXD-mode", fmt.Sprintf("%04o", m))
	}
	if args.Append {
		header.Set("X-LXD-write", "append")
	}
	body, size := args.Content, int64(-1)
	switch r := body.(type) {
	case nil:
		size = 0
	case interface{ Len() int }: // bytes.Reader, strings.Reader, bytes.Buffer
		size = int64(r.Len())
	default:
		size = readerSize(body)
	}
	if args.Type == FileTypeDirectory {
		body, size = nil, 0
	}
	r, _, err := c.rawQuery(ctx, http.MethodPost, filesPath(name, path), body, size, header)
	if err != nil {
		return err
	}
	if r.Type == api.AsyncResponse {
		return fmt.Errorf("create %s in %s: unexpected operation", path, name)
	}
	return nil
}

// DeleteInstanceFile removes a file, a symlink (not its target) or an
// empty directory inside the instance.
func (c *Client) DeleteInstanceFile(ctx context.Context, name, path string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, filesPath(name, path), nil, "", nil)
	return err
}

func filesPath(name, path string) string {
	return instancePath(name) + "/files?" + url.Values{"path": {path}}.Encode()
}

// unixMode turns an os.FileMode into the Unix permission and special bits.
func unixMode(m os.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}
