package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Outbox puts files into the directory the supervisor collects. The
// supervisor picks a file up once it is closed after writing or renamed into
// place, ignores names that start with a dot and never follows symlinks; so
// Put writes a dot-temp file next to the target and renames it into place,
// and the supervisor sees the whole file exactly once.
type Outbox struct {
	// Dir is the outbox directory. Default: $SORTIE_OUTBOX, else /sortie/outbox.
	Dir string
}

// ErrBadName marks an outbox name that Put refuses.
var ErrBadName = errors.New("bad outbox name")

// CheckName reports whether name is an acceptable outbox name: a relative,
// slash-separated path whose elements are not empty, not "." or "..", and do
// not start with a dot (the supervisor ignores such files: they are temps).
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("%w: %q contains a NUL byte", ErrBadName, name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("%w: %q is absolute; names are relative to the outbox", ErrBadName, name)
	}
	for _, el := range strings.Split(name, "/") {
		switch {
		case el == "":
			return fmt.Errorf("%w: %q has an empty path element", ErrBadName, name)
		case el == "..":
			return fmt.Errorf("%w: %q has a '..' element", ErrBadName, name)
		case strings.HasPrefix(el, "."):
			return fmt.Errorf("%w: %q has an element starting with '.', which the supervisor ignores", ErrBadName, name)
		}
	}
	return nil
}

// Put copies r into the outbox as name (see CheckName), creating the
// directories on the way, and returns the number of bytes written. An
// existing file of that name is replaced; the supervisor ships the new one
// under the same name. Directories on the way must be real directories, not
// symlinks: the supervisor would not follow them.
func (o Outbox) Put(name string, r io.Reader) (int64, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	root := o.Dir
	if root == "" {
		root = Dir(EnvOutbox, DefaultOutbox)
	}
	if fi, err := os.Stat(root); err != nil {
		return 0, fmt.Errorf("outbox: %w", err)
	} else if !fi.IsDir() {
		return 0, fmt.Errorf("outbox: %s is not a directory", root)
	}
	dir := root
	parent, base := path.Split(name)
	if parent != "" {
		for _, el := range strings.Split(strings.TrimSuffix(parent, "/"), "/") {
			dir = filepath.Join(dir, el)
			if err := ensureRealDir(dir); err != nil {
				return 0, fmt.Errorf("outbox %s: %w", name, err)
			}
		}
	}
	cr := &countingReader{r: r}
	if err := writeFileAtomic(dir, base, cr); err != nil {
		return cr.n, fmt.Errorf("outbox %s: %w", name, err)
	}
	return cr.n, nil
}

// ensureRealDir makes dir unless it exists, and refuses it when it is a
// symlink or not a directory.
func ensureRealDir(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		return ensureExistingRealDir(dir)
	case err != nil:
		return err
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink, which the supervisor does not follow", dir)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// ensureExistingRealDir re-checks dir after a Mkdir that may have lost a race.
func ensureExistingRealDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// writeFileAtomic writes r to dir/name through a dot-temp file in dir, then
// renames it into place; on any error the temp file is removed and nothing
// appears under name. The file is mode 0644.
func writeFileAtomic(dir, name string, r io.Reader) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, r); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
