package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/johannesboyne/gofakes3"
	"github.com/spf13/afero"
)

// gofakes3's file backend writes an object in place: a reader streaming the
// old version while it is rewritten sees a torn object, and an upload cut
// off half way leaves half an object. The protocol rewrites status objects
// while the host reads them, so the embedded server adds S3's guarantee that
// a GET sees a whole version or none, in two layers:
//
//   - wholeBodies reads each upload completely into a spool file before the
//     backend touches the stored object, so a cut-off upload changes nothing
//     (and the backend's lock is not held across a slow network read);
//   - atomicFs makes the backend's Create write a temporary file that
//     replaces the object by rename when it is closed, so an open reader
//     keeps the version it opened.
//
// tmpDir, under the state directory, holds both kinds of temporary files.
const tmpDir = ".tmp"

// wholeBodies is a gofakes3.Backend whose PutObject reads the whole body,
// and checks it has the announced size, before it writes anything.
type wholeBodies struct {
	gofakes3.Backend
	spool string // OS directory for bodies being received
}

func (b wholeBodies) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	f, err := os.CreateTemp(b.spool, "body-")
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, input)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if n != size {
		return gofakes3.PutObjectResult{}, fmt.Errorf("body of %q has %d bytes, not the announced %d", key, n, size)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	return b.Backend.PutObject(bucket, key, meta, f, size, cond)
}

// atomicFs is an afero.Fs whose Create writes a temporary file in tmpDir that
// is renamed over the named file by Close.
type atomicFs struct{ afero.Fs }

func (fs atomicFs) Create(name string) (afero.File, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	tmp := filepath.Join(tmpDir, "put-"+hex.EncodeToString(b))
	f, err := fs.Fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f, fs: fs.Fs, tmp: tmp, name: name}, nil
}

type atomicFile struct {
	afero.File
	fs        afero.Fs
	tmp, name string
	closed    bool
}

func (f *atomicFile) Name() string { return f.name }

// Close closes the temporary file and renames it over the target. The
// backend writes nothing that is not a complete body (see wholeBodies), so
// every close publishes.
func (f *atomicFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if err := f.File.Close(); err != nil {
		_ = f.fs.Remove(f.tmp)
		return err
	}
	if err := f.fs.Rename(f.tmp, f.name); err != nil {
		_ = f.fs.Remove(f.tmp)
		return err
	}
	return nil
}
