package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/driver"
)

// trustEgressCA makes the guest under root trust certPEM, the egress
// proxy's CA (driver.TrustCA): the certificate alone in
// driver.GuestCAFile and hangar's block in driver.GuestCABundle, both made
// when absent, each written only when it changes. An empty certPEM undoes
// what an earlier boot did, if it did anything.
//
// The files are written in place (following a symlink, keeping owner and
// mode), not renamed over: nothing else runs yet, and an image whose
// bundle is a link to another file keeps it one.
func trustEgressCA(root string, certPEM []byte) error {
	caFile := filepath.Join(root, driver.GuestCAFile)
	bundlePath := filepath.Join(root, driver.GuestCABundle)
	if len(certPEM) == 0 {
		if _, err := os.Lstat(caFile); errors.Is(err, fs.ErrNotExist) {
			return nil // never trusted here: nothing to read or undo
		}
		if err := os.Remove(caFile); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(caFile), 0o755); err != nil {
			return err
		}
		if err := writeIfChanged(caFile, certPEM); err != nil {
			return err
		}
	}
	bundle, err := os.ReadFile(bundlePath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, changed := driver.TrustCA(bundle, certPEM)
	if !changed {
		return nil
	}
	if len(out) == 0 {
		// Only our block was there: the bundle was ours (a busybox
		// image has none), and an empty one would stop a TLS library
		// from looking for another.
		return os.Remove(bundlePath)
	}
	if err := os.MkdirAll(filepath.Dir(bundlePath), 0o755); err != nil {
		return err
	}
	return writeSynced(bundlePath, out)
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeSynced(path, data)
}

// writeSynced writes data to path (0644 when new) and syncs it: the
// guest may be powered off or snapshotted right after.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
