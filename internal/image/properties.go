package image

import (
	"bufio"
	"io"
	"os"
	"path"
	"strings"

	"github.com/hangar-dev/hangar/internal/fsroot"
)

// fillProperties completes a new image's properties with what is true of
// it and was not given: os and release as the tree's os-release states
// them, a serial from its creation date, and a description made of those
// as LXD's images word theirs ("Debian bookworm amd64 (20240101_05:24)"). Given
// values always win; what cannot be known (a variant) stays absent rather
// than invented. tree is "" for a disk image, whose files are not read.
func fillProperties(rec *Record, tree string) {
	if rec.Properties == nil {
		rec.Properties = map[string]string{}
	}
	p := rec.Properties
	if tree != "" && (p["os"] == "" || p["release"] == "") {
		osName, release := readOSRelease(tree)
		if p["os"] == "" && osName != "" {
			p["os"] = osName
		}
		if p["release"] == "" && release != "" {
			p["release"] = release
		}
	}
	if p["architecture"] == "" && rec.Architecture != "" {
		p["architecture"] = rec.Architecture
	}
	if p["serial"] == "" && !rec.CreatedAt.IsZero() {
		p["serial"] = rec.CreatedAt.UTC().Format("20060102_15:04")
	}
	if p["description"] == "" && p["os"] != "" {
		words := []string{p["os"]}
		for _, k := range []string{"release", "architecture"} {
			if p[k] != "" {
				words = append(words, p[k])
			}
		}
		p["description"] = strings.Join(words, " ") + " (" + p["serial"] + ")"
	}
}

// maxOSRelease bounds what is read of an image's os-release: the file is
// the image's, and may be anything.
const maxOSRelease = 64 << 10

// readOSRelease returns the distribution's name (NAME, else ID) and release
// (VERSION_CODENAME, else VERSION_ID) from the tree's /etc/os-release or
// /usr/lib/os-release. The tree is untrusted: every path is resolved
// inside it (fsroot), symlinks included; nothing found is "", "".
func readOSRelease(tree string) (name, release string) {
	dir, err := os.Open(tree)
	if err != nil {
		return "", ""
	}
	defer dir.Close()
	root := fsroot.New(dir)
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if f := openFollowing(root, p); f != nil {
			vals := parseOSRelease(io.LimitReader(f, maxOSRelease))
			f.Close()
			name, release = first(vals["NAME"], vals["ID"]), first(vals["VERSION_CODENAME"], vals["VERSION_ID"])
			if name != "" {
				return name, release
			}
		}
	}
	return "", ""
}

// openFollowing opens the regular file at p in root, following a few
// symlinks in last place (/etc/os-release -> ../usr/lib/os-release); nil
// when there is none.
func openFollowing(root *fsroot.Root, p string) *os.File {
	for range 8 {
		n, err := root.Get(p)
		if err != nil {
			return nil
		}
		switch {
		case n.File != nil:
			return n.File
		case n.Target != "":
			if path.IsAbs(n.Target) {
				p = n.Target
			} else {
				p = path.Join(path.Dir(p), n.Target)
			}
		default:
			return nil
		}
	}
	return nil
}

// parseOSRelease reads os-release's KEY=value lines, unquoting values.
func parseOSRelease(r io.Reader) map[string]string {
	vals := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || k == "" || strings.HasPrefix(k, "#") {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vals[k] = strings.TrimSpace(v)
	}
	return vals
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
