package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
)

// fakeDB is an in-memory DB honouring the contract documented on DB.
type fakeDB struct {
	mu      sync.Mutex
	images  map[string]Record
	aliases map[string]AliasRecord
	fail    map[string]error // method name → error it returns
}

func newFakeDB() *fakeDB {
	return &fakeDB{images: map[string]Record{}, aliases: map[string]AliasRecord{}, fail: map[string]error{}}
}

func (f *fakeDB) failing(method string) error { return f.fail[method] }

func (f *fakeDB) setFail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

func cloneRecord(r Record) Record {
	r.Properties = maps.Clone(r.Properties)
	return r
}

func (f *fakeDB) CreateImage(_ context.Context, r Record, project string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("CreateImage"); err != nil {
		return err
	}
	if _, ok := f.images[r.Fingerprint]; ok {
		return errdefs.Conflict("image %q exists", r.Fingerprint)
	}
	r = cloneRecord(r)
	r.Projects = []string{project}
	f.images[r.Fingerprint] = r
	return nil
}

func (f *fakeDB) AddImageProject(_ context.Context, fp, project string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.images[fp]
	switch {
	case !ok:
		return errdefs.NotFound("no image %q", fp)
	case slices.Contains(r.Projects, project):
		return errdefs.Conflict("image %q in project %q exists", fp, project)
	}
	r.Projects = append(slices.Clone(r.Projects), project)
	sort.Strings(r.Projects)
	f.images[fp] = r
	return nil
}

func (f *fakeDB) RemoveImageProject(_ context.Context, fp, project string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.images[fp]
	if !ok || !slices.Contains(r.Projects, project) {
		return errdefs.NotFound("no image %q in project %q", fp, project)
	}
	r.Projects = slices.DeleteFunc(slices.Clone(r.Projects), func(p string) bool { return p == project })
	f.images[fp] = r
	for k, a := range f.aliases {
		if a.Project == project && a.Target == fp {
			delete(f.aliases, k)
		}
	}
	return nil
}

func (f *fakeDB) GetImage(_ context.Context, project, prefix string) (Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("GetImage"); err != nil {
		return Record{}, err
	}
	var found []Record
	for fp, r := range f.images {
		if strings.HasPrefix(fp, prefix) && (project == "" || slices.Contains(r.Projects, project)) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return Record{}, errdefs.NotFound("no image %q", prefix)
	case 1:
		return cloneRecord(found[0]), nil
	}
	return Record{}, errdefs.Invalid("ambiguous prefix %q", prefix)
}

func (f *fakeDB) ListImages(_ context.Context, project string) ([]Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for _, r := range f.images {
		if project == "" || slices.Contains(r.Projects, project) {
			out = append(out, cloneRecord(r))
		}
	}
	return out, nil
}

func (f *fakeDB) UpdateImage(_ context.Context, r Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.images[r.Fingerprint]
	if !ok {
		return errdefs.NotFound("no image %q", r.Fingerprint)
	}
	r = cloneRecord(r)
	r.Projects = old.Projects // Not the caller's to change.
	f.images[r.Fingerprint] = r
	return nil
}

func (f *fakeDB) DeleteImage(_ context.Context, fp string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.images[fp]; !ok {
		return errdefs.NotFound("no image %q", fp)
	}
	delete(f.images, fp)
	for k, a := range f.aliases {
		if a.Target == fp {
			delete(f.aliases, k)
		}
	}
	return nil
}

// aliasKey keys an alias in the fake: aliases are per project.
func aliasKey(project, name string) string { return project + "/" + name }

func (f *fakeDB) CreateAlias(_ context.Context, a AliasRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("CreateAlias"); err != nil {
		return err
	}
	if _, ok := f.aliases[aliasKey(a.Project, a.Name)]; ok {
		return errdefs.Conflict("alias %q exists", a.Name)
	}
	f.aliases[aliasKey(a.Project, a.Name)] = a
	return nil
}

func (f *fakeDB) GetAlias(_ context.Context, project, name string) (AliasRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.aliases[aliasKey(project, name)]
	if !ok {
		return AliasRecord{}, errdefs.NotFound("no alias %q", name)
	}
	return a, nil
}

func (f *fakeDB) ListAliases(_ context.Context, project string) ([]AliasRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AliasRecord
	for _, a := range f.aliases {
		if project == "" || a.Project == project {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeDB) UpdateAlias(_ context.Context, a AliasRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.aliases[aliasKey(a.Project, a.Name)]; !ok {
		return errdefs.NotFound("no alias %q", a.Name)
	}
	f.aliases[aliasKey(a.Project, a.Name)] = a
	return nil
}

func (f *fakeDB) RenameAlias(_ context.Context, project, oldName, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.aliases[aliasKey(project, oldName)]
	if !ok {
		return errdefs.NotFound("no alias %q", oldName)
	}
	if _, ok := f.aliases[aliasKey(project, newName)]; ok {
		return errdefs.Conflict("alias %q exists", newName)
	}
	delete(f.aliases, aliasKey(project, oldName))
	a.Name = newName
	f.aliases[aliasKey(project, newName)] = a
	return nil
}

func (f *fakeDB) DeleteAlias(_ context.Context, project, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.aliases[aliasKey(project, name)]; !ok {
		return errdefs.NotFound("no alias %q", name)
	}
	delete(f.aliases, aliasKey(project, name))
	return nil
}

func (f *fakeDB) counts() (images, aliases int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.images), len(f.aliases)
}

// fakeEmitter records lifecycle events.
type fakeEmitter struct {
	mu     sync.Mutex
	events []emitted
}

// emitted is one recorded event; Source spells the entity as the LXD
// edge renders it, so the expectations read like what a client sees.
type emitted struct {
	Action, Source string
	Ctx            map[string]any
}

func (e *fakeEmitter) Lifecycle(_ context.Context, action string, ent event.Entity, ctx map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	src := "/1.0/images/" + ent.Name
	if ent.Kind == event.EntityImageAlias {
		src = "/1.0/images/aliases/" + ent.Name
	}
	e.events = append(e.events, emitted{action, src, ctx})
}

func (e *fakeEmitter) take() []emitted {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.events
	e.events = nil
	return out
}

// tarEntry is one entry of a test archive; Body sets the size of regular files.
type tarEntry struct {
	tar.Header
	Body string
}

var testTime = time.Date(2024, 3, 1, 12, 30, 45, 0, time.UTC)

func reg(name, body string, mode int64) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, Body: body}
}

func dirEntry(name string, mode int64) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

func symlinkEntry(name, target string) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlinkEntry(name, target string) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// buildTar writes entries as a tar archive. ModTime defaults to testTime.
func buildTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if h.ModTime.IsZero() {
			h.ModTime = testTime
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if len(h.PAXRecords) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if e.Body != "" {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// basicRootfs is a small but typical root filesystem.
func basicRootfs(t testing.TB) []byte {
	return buildTar(t,
		dirEntry("./", 0o755),
		dirEntry("./etc/", 0o755),
		reg("./etc/hostname", "hangar\n", 0o644),
		reg("./etc/os-release", "ID=test\n", 0o644),
		dirEntry("./bin/", 0o755),
		reg("./bin/sh", "#!fake shell\n", 0o755),
		symlinkEntry("./bin/bash", "sh"),
	)
}

// compress compresses data with one of "none", "gzip", "xz", "zstd", "bzip2".
func compress(t testing.TB, kind string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch kind {
	case "none":
		return data
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case "xz":
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case "zstd":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case "bzip2":
		// The standard library only decompresses bzip2.
		if _, err := exec.LookPath("bzip2"); err != nil {
			t.Skip("bzip2 not installed")
		}
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	default:
		t.Fatalf("unknown compression %q", kind)
	}
	return buf.Bytes()
}

// newTestService returns a service over a fresh directory.
func newTestService(t testing.TB) (*Service, *fakeDB, *fakeEmitter, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images")
	db, em := newFakeDB(), &fakeEmitter{}
	s, err := New(dir, db, em, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, db, em, dir
}

// storeEntries lists what the store directories hold.
func storeEntries(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"blobs/sha256", "rootfs"} {
		entries, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, d+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// unpackShifted unpacks image fp for idmap into a new empty directory, as
// a storage pool caches an image.
func unpackShifted(t testing.TB, s *Service, fp string, idmap *driver.IDMap) (string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir, s.UnpackTree(context.Background(), fp, idmap, dir)
}

func assertKind(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v: want kind %v", err, kind)
	}
}

// snapshot records every path under dir with its type, mode, size and
// content, to show that nothing outside a tree changed.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d", fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
