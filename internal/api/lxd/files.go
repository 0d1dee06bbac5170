package lxd

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

// The files API's headers, LXD's names. Ids are inside the instance.
const (
	headerUID      = "X-LXD-uid"
	headerGID      = "X-LXD-gid"
	headerMode     = "X-LXD-mode"
	headerType     = "X-LXD-type"
	headerWrite    = "X-LXD-write"
	headerModified = "X-LXD-modified"
)

// getInstanceFile answers GET (and HEAD) /1.0/instances/{name}/files?path=:
// a file's content, a directory's entry names as a sync response, or a
// symlink's target (absolute), each with LXD's X-LXD-* headers.
func (s *Server) getInstanceFile(w http.ResponseWriter, r *http.Request) {
	p, err := filePath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	err = s.Instances.ReadFile(r.Context(), r.PathValue("name"), p, func(f *instance.File) error {
		h := w.Header()
		h.Set(headerUID, strconv.FormatInt(f.UID, 10))
		h.Set(headerGID, strconv.FormatInt(f.GID, 10))
		// LXD reports the permission bits alone.
		h.Set(headerMode, fmt.Sprintf("%04o", f.Mode&0o777))
		h.Set(headerModified, f.ModTime.UTC().String())
		h.Set(headerType, f.Type)
		switch f.Type {
		case instance.FileTypeDirectory:
			entries := f.Entries
			if entries == nil {
				entries = []string{}
			}
			writeSync(w, entries, "")
		case instance.FileTypeSymlink:
			serveBytes(w, r, path.Base(p), time.Now(), strings.NewReader(f.Target))
		default:
			serveBytes(w, r, path.Base(p), f.ModTime, f.Content)
		}
		return nil
	})
	if err != nil {
		writeError(w, err)
	}
}

// serveBytes answers with content as LXD's single-file response does;
// http.ServeContent adds Content-Length, ranges and conditional requests.
func serveBytes(w http.ResponseWriter, r *http.Request, name string, mod time.Time, content io.ReadSeeker) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", "inline;filename="+name)
	http.ServeContent(w, r, name, mod, content)
}

// postInstanceFile creates or replaces a file, makes a directory or a
// symlink (X-LXD-type), with X-LXD-uid, X-LXD-gid, X-LXD-mode and
// X-LXD-write: overwrite or append.
func (s *Server) postInstanceFile(w http.ResponseWriter, r *http.Request) {
	p, err := filePath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	fw, err := parseFileHeaders(r.Header)
	if err != nil {
		writeError(w, err)
		return
	}
	fw.Content = r.Body
	if err := s.Instances.WriteFile(r.Context(), r.PathValue("name"), p, fw); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// deleteInstanceFile removes a file, a symlink or an empty directory.
func (s *Server) deleteInstanceFile(w http.ResponseWriter, r *http.Request) {
	p, err := filePath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.DeleteFile(r.Context(), r.PathValue("name"), p); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// filePath reads ?path=. Like LXD, a relative path is taken from "/":
// lxc 5.0's `file push -p` sends its parents as "tmp/a" when it probes
// which exist.
func filePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.Invalid("Missing path argument")
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p, nil
}

// parseFileHeaders reads the X-LXD-* headers of a file write. Unlike LXD,
// which takes a value it cannot parse for "not given", a bad value is a
// 400 naming the header: a typo must not silently make a root-owned file.
func parseFileHeaders(h http.Header) (instance.FileWrite, error) {
	fw := instance.FileWrite{UID: -1, GID: -1, Mode: -1}
	var err error
	if fw.UID, err = parseIDHeader(h, headerUID); err != nil {
		return fw, err
	}
	if fw.GID, err = parseIDHeader(h, headerGID); err != nil {
		return fw, err
	}
	if v := h.Get(headerMode); v != "" {
		// lxc sends "%04o"; "0o644" and "644" are octal too.
		m, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O"), 8, 32)
		if err != nil || m > 0o7777 {
			return fw, errdefs.Invalid("%s %q: want an octal mode such as 0644", headerMode, v)
		}
		fw.Mode = int64(m)
	}
	switch v := h.Get(headerType); v {
	case "", instance.FileTypeFile:
		fw.Type = instance.FileTypeFile
	case instance.FileTypeDirectory, instance.FileTypeSymlink:
		fw.Type = v
	default:
		return fw, errdefs.Invalid("%s %q: want file, directory or symlink", headerType, v)
	}
	switch v := h.Get(headerWrite); v {
	case "", "overwrite":
	case "append":
		if fw.Type != instance.FileTypeFile {
			return fw, errdefs.Invalid("%s append: only files can be appended to, not a %s", headerWrite, fw.Type)
		}
		fw.Append = true
	default:
		return fw, errdefs.Invalid("%s %q: want overwrite or append", headerWrite, v)
	}
	return fw, nil
}

// parseIDHeader reads a uid or gid header: absent or -1 means not given.
func parseIDHeader(h http.Header, name string) (int64, error) {
	v := h.Get(name)
	if v == "" || v == "-1" {
		return -1, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 || id >= math.MaxUint32 {
		return 0, errdefs.Invalid("%s %q: want a decimal id from 0 to %d", name, v, uint32(math.MaxUint32-1))
	}
	return id, nil
}
