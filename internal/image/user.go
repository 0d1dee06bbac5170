package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/fsroot"
)

// resolveUser turns an OCI config's User ("name", "uid", "name:group",
// "uid:gid", ...) into numeric ids, through the tree's /etc/passwd and
// /etc/group as the image has them. A user given without a group takes the
// user's primary group from /etc/passwd, or 0 for a uid it does not list
// (as Docker does).
func resolveUser(root, user string) (uid, gid uint32, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" {
		return 0, 0, errors.New("empty user")
	}
	passwd, err := readInRoot(root, "etc/passwd")
	if err != nil {
		return 0, 0, err
	}
	uid, primary, found, err := lookupID(passwd, u, 2, 3)
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("no user %q in the image's /etc/passwd", u)
	}
	if !hasGroup {
		return uid, primary, nil
	}
	if g == "" {
		return 0, 0, errors.New("empty group")
	}
	group, err := readInRoot(root, "etc/group")
	if err != nil {
		return 0, 0, err
	}
	gid, _, found, err = lookupID(group, g, 2, -1)
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("no group %q in the image's /etc/group", g)
	}
	return uid, gid, nil
}

// lookupID finds name (or a number) in a passwd-style file: the id in
// field idField and, when extraField >= 0, that field too. A number is
// found whether or not the file lists it; extra is then its entry's, or 0.
func lookupID(content, name string, idField, extraField int) (id, extra uint32, found bool, err error) {
	n, numErr := strconv.ParseUint(name, 10, 32)
	numeric := numErr == nil
	if numeric && n == math.MaxUint32 {
		return 0, 0, false, fmt.Errorf("id %d is out of range", n)
	}
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) <= idField || (extraField >= 0 && len(f) <= extraField) {
			continue
		}
		v, err := strconv.ParseUint(f[idField], 10, 32)
		if err != nil {
			continue
		}
		if (numeric && v == n) || (!numeric && f[0] == name) {
			if extraField >= 0 {
				e, err := strconv.ParseUint(f[extraField], 10, 32)
				if err != nil {
					return 0, 0, false, fmt.Errorf("entry %q: bad id %q", f[0], f[extraField])
				}
				extra = uint32(e)
			}
			return uint32(v), extra, true, nil
		}
	}
	if numeric {
		return uint32(n), 0, true, nil
	}
	return 0, 0, false, nil
}

// readInRoot reads a small file of the tree, following symlinks as if the
// tree were "/" so that none leads out of it. A missing file reads empty.
func readInRoot(root, rel string) (string, error) {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := fsroot.Openat2(dfd, rel, &how)
	if err == unix.ENOENT {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("open /%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	return string(b), err
}
