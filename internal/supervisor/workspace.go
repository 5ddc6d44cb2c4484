package supervisor

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// extractWorkspace unpacks a gzip-compressed tar into dir. Every write goes
// through os.Root, so no entry (an absolute name, "..", or a path through a
// link) can land outside dir. Only directories, regular files and symbolic
// links are extracted; other entry types are refused. Directories and files
// are made writable by everyone: the VM is single-use and the workspace is
// the agent's, whatever user its image runs as.
func extractWorkspace(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("workspace archive: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("workspace archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("workspace archive: entry %q leaves the workspace", h.Name)
		}
		mode := fs.FileMode(h.Mode).Perm()
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o777); err != nil {
				return fmt.Errorf("workspace %q: %w", h.Name, err)
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o777); err != nil {
				return fmt.Errorf("workspace %q: %w", h.Name, err)
			}
			if err := root.Chmod(name, 0o777); err != nil {
				return fmt.Errorf("workspace %q: %w", h.Name, err)
			}
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, mode|0o600)
			if err != nil {
				return fmt.Errorf("workspace %q: %w", h.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = root.Chmod(name, mode|0o666)
			}
			if err != nil {
				return fmt.Errorf("workspace %q: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, name); err != nil {
				return fmt.Errorf("workspace %q: %w", h.Name, err)
			}
		default:
			return fmt.Errorf("workspace archive: entry %q has unsupported type %q", h.Name, h.Typeflag)
		}
	}
}
