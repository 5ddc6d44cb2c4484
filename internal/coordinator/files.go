package coordinator

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// archiveDir writes dir as a gzip-compressed tar: directories, regular files
// and symbolic links (as links, never followed). Names are relative to dir.
func archiveDir(dir string, w io.Writer) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !fi.IsDir() && !fi.Mode().IsRegular() {
			return nil // sockets, devices, fifos: not part of a workspace
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			// The file is packed as it was when stat'ed: a file that grows
			// meanwhile (a live log) is cut at that size.
			n, err := io.Copy(tw, io.LimitReader(f, h.Size))
			f.Close()
			if err == nil && n < h.Size {
				err = fmt.Errorf("%s shrank from %d to %d bytes while it was packed", rel, h.Size, n)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// blobTimeout bounds the download of one outbox file.
const blobTimeout = 10 * time.Minute

// saveOutbox downloads an outbox blob, checks its size and SHA-256, and
// writes it under the run's outbox directory. The name is checked and every
// write goes through os.Root, so nothing lands outside that directory.
func (r *Run) saveOutbox(ctx context.Context, f *protocol.OutboxFile) (string, error) {
	if err := protocol.ValidOutboxName(f.Name); err != nil {
		return "", fmt.Errorf("outbox file refused: %w", err)
	}
	bctx, cancel := context.WithTimeout(ctx, blobTimeout)
	defer cancel()
	b, err := r.c.cfg.Store.Get(bctx, r.keys.Blob(f.BlobSeq))
	if err != nil {
		return "", fmt.Errorf("outbox %q: download: %w", f.Name, err)
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
		return "", fmt.Errorf("outbox %q: blob %d does not match its size and SHA-256", f.Name, f.BlobSeq)
	}
	dir := r.spec.OutboxDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("outbox directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("outbox directory: %w", err)
	}
	defer root.Close()
	if parent := path.Dir(f.Name); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return "", fmt.Errorf("outbox %q: %w", f.Name, err)
		}
	}
	tmp := path.Join(path.Dir(f.Name), fmt.Sprintf(".sortie-%d.tmp", f.BlobSeq))
	if err := root.WriteFile(tmp, b, 0o644); err != nil {
		return "", fmt.Errorf("outbox %q: %w", f.Name, err)
	}
	if err := root.Rename(tmp, f.Name); err != nil {
		_ = root.Remove(tmp)
		return "", fmt.Errorf("outbox %q: %w", f.Name, err)
	}
	return filepath.Join(dir, filepath.FromSlash(f.Name)), nil
}
