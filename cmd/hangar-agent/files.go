package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// The agent runs as root in the guest and the guest is the boundary, so
// paths are taken as the guest sees them: no resolution within a root is
// needed, unlike the host's files API on a container's tree.

func cleanPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%w: path %q is not absolute", errInvalid, p)
	}
	return path.Clean(p), nil
}

func (a *agent) fileGet(s *session, ch uint32, req vmagent.FileGet) {
	p, err := cleanPath(req.Path)
	if err != nil {
		s.replyErr(ch, err)
		return
	}
	st, err := os.Lstat(p)
	if err != nil {
		s.replyErr(ch, err)
		return
	}
	sys := st.Sys().(*syscall.Stat_t)
	info := vmagent.FileInfo{
		UID: int64(sys.Uid), GID: int64(sys.Gid),
		Mode:    uint32(sys.Mode & 0o7777),
		Size:    st.Size(),
		ModTime: st.ModTime().UnixNano(),
	}
	var f *os.File
	switch {
	case st.IsDir():
		info.Type = vmagent.TypeDirectory
		ents, err := os.ReadDir(p)
		if err != nil {
			s.replyErr(ch, err)
			return
		}
		info.Entries = make([]string, 0, len(ents))
		for _, e := range ents {
			info.Entries = append(info.Entries, e.Name())
		}
		sort.Strings(info.Entries)
	case st.Mode()&os.ModeSymlink != 0:
		info.Type = vmagent.TypeSymlink
		if info.Target, err = os.Readlink(p); err != nil {
			s.replyErr(ch, err)
			return
		}
	case st.Mode().IsRegular():
		info.Type = vmagent.TypeFile
		if f, err = os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0); err != nil {
			s.replyErr(ch, err)
			return
		}
		defer f.Close()
	default:
		s.replyErr(ch, fmt.Errorf("%w: %s is not a file, directory or symlink", errInvalid, p))
		return
	}
	s.reply(ch, vmagent.MsgFileInfo, info)
	if f != nil {
		buf := make([]byte, vmagent.DataChunk)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if werr := s.write(vmagent.MsgData, ch, append([]byte(nil), buf[:n]...)); werr != nil {
					return
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				s.replyErr(ch, err)
				return
			}
		}
	}
	_ = s.write(vmagent.MsgData, ch, nil)
}

func (a *agent) filePutStart(s *session, ch uint32, req vmagent.FilePut) {
	p, err := cleanPath(req.Path)
	if err != nil {
		s.replyErr(ch, err)
		return
	}
	req.Path = p
	uid, gid := max(req.UID, 0), max(req.GID, 0)
	c := &channel{put: &req}
	switch req.Type {
	case vmagent.TypeDirectory:
		err := os.Mkdir(p, os.FileMode(req.Mode&0o777))
		if err == nil {
			_ = os.Lchown(p, int(uid), int(gid))
			_ = os.Chmod(p, modeBits(req.Mode))
		} else if st, serr := os.Lstat(p); serr != nil || !st.IsDir() {
			s.replyErr(ch, err)
			return
		}
		// Nothing follows; the daemon still ends the upload with an empty Data.
	case vmagent.TypeSymlink:
	case vmagent.TypeFile:
		flags := os.O_WRONLY | os.O_CREATE | unix.O_NOFOLLOW
		if req.Append {
			flags |= os.O_APPEND
		} else {
			flags |= os.O_TRUNC
		}
		_, statErr := os.Lstat(p)
		f, err := os.OpenFile(p, flags, os.FileMode(req.Mode&0o777))
		if err != nil {
			s.replyErr(ch, err)
			return
		}
		if errors.Is(statErr, os.ErrNotExist) {
			_ = f.Chown(int(uid), int(gid))
			_ = f.Chmod(modeBits(req.Mode))
		}
		c.upload = f
	default:
		s.replyErr(ch, fmt.Errorf("%w: type %q", errInvalid, req.Type))
		return
	}
	s.put(ch, c)
}

func modeBits(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

func (a *agent) filePutData(s *session, ch uint32, b []byte) {
	c := s.get(ch)
	if c == nil || c.put == nil {
		return
	}
	if len(b) > 0 {
		if c.upload != nil {
			if _, err := c.upload.Write(b); err != nil {
				c.upload.Close()
				c.upload = nil
				s.drop(ch)
				s.replyErr(ch, err)
			}
		} else if c.put.Type == vmagent.TypeSymlink && len(c.buf) < 4096 {
			c.buf = append(c.buf, b...)
		}
		return
	}
	s.drop(ch)
	var err error
	switch c.put.Type {
	case vmagent.TypeFile:
		err = c.upload.Close()
	case vmagent.TypeSymlink:
		err = makeSymlink(string(c.buf), c.put)
	}
	if err != nil {
		s.replyErr(ch, err)
		return
	}
	b, _ = json.Marshal(struct{}{})
	_ = s.write(vmagent.MsgDone, ch, b)
}

func makeSymlink(target string, req *vmagent.FilePut) error {
	if old, err := os.Readlink(req.Path); err == nil && old == target {
		return nil
	}
	if err := os.Symlink(target, req.Path); err != nil {
		return err
	}
	return os.Lchown(req.Path, int(max(req.UID, 0)), int(max(req.GID, 0)))
}

func fileDelete(p string) error {
	p, err := cleanPath(p)
	if err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("%w: cannot delete /", errInvalid)
	}
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return unix.Rmdir(p)
	}
	return unix.Unlink(p)
}

// statPath answers Stat: what the path is, or that it is missing (no
// error), or why it could not be stat'ed (Err).
func statPath(req vmagent.Stat) (vmagent.StatInfo, error) {
	p, err := cleanPath(req.Path)
	if err != nil {
		return vmagent.StatInfo{}, err
	}
	return statInfo(p, req.FollowLinks), nil
}

func statInfo(p string, follow bool) vmagent.StatInfo {
	stat := os.Lstat
	if follow {
		stat = os.Stat
	}
	st, err := stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return vmagent.StatInfo{}
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			return vmagent.StatInfo{Err: pe.Err.Error()}
		}
		return vmagent.StatInfo{Err: err.Error()}
	}
	info := vmagent.StatInfo{Exists: true, Mode: uint32(st.Mode().Perm()), Size: st.Size(), Type: "other"}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		info.Mode = uint32(sys.Mode & 0o7777)
	}
	switch {
	case st.Mode().IsRegular():
		info.Type = vmagent.TypeFile
	case st.IsDir():
		info.Type = vmagent.TypeDirectory
	case st.Mode()&os.ModeSymlink != 0:
		info.Type = vmagent.TypeSymlink
		info.Target, _ = os.Readlink(p)
	}
	return info
}
