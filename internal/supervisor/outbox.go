package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// outbox uploads the files the agent puts in its outbox directory. A file is
// uploaded once it is complete: closed after writing or renamed into place
// (seen through inotify), or found by a scan. Names with an element starting
// with "." are the agent's temporary files and are skipped. Symbolic links
// are never followed and never uploaded, and nothing outside the directory
// is ever opened (os.Root).
type outbox struct {
	dir   string
	root  *os.Root
	store protocol.Store
	keys  protocol.RunKeys
	mb    *mailbox
	log   *slog.Logger
	book  *bookStore // presigned mode: refills wake the uploads

	uploadMu sync.Mutex
	mu       sync.Mutex
	nextBlob int64
	sent     map[string]fileStamp
	files    map[string]protocol.OutboxFile
	refused  map[string]bool
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

func newOutbox(dir string, store protocol.Store, keys protocol.RunKeys, mb *mailbox, log *slog.Logger) (*outbox, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	mb.setBlobNext(1)
	return &outbox{
		dir: dir, root: root, store: store, keys: keys, mb: mb, log: log,
		nextBlob: 1, sent: map[string]fileStamp{}, files: map[string]protocol.OutboxFile{},
		refused: map[string]bool{},
	}, nil
}

func (o *outbox) close() { _ = o.root.Close() }

// hidden reports whether a name is an agent temp file (an element starts with ".").
func hidden(name string) bool {
	for _, el := range strings.Split(name, "/") {
		if strings.HasPrefix(el, ".") {
			return true
		}
	}
	return false
}

// refuse tells the user, once per name, why a file was not uploaded.
func (o *outbox) refuse(name, why string) {
	o.mu.Lock()
	seen := o.refused[name]
	o.refused[name] = true
	o.mu.Unlock()
	if seen {
		return
	}
	o.log.Warn("outbox entry refused", "name", name, "why", why)
	o.mb.emit(protocol.Event{Type: protocol.EventNotice, Notice: &protocol.Notice{
		Level: protocol.NoticeWarning, Text: fmt.Sprintf("outbox entry %q refused: %s", name, why),
	}})
}

// consider uploads the file at name (relative, slash-separated) if it is a
// regular file that changed since its last upload. A file modified within
// quiet is left for later: a scan cannot tell whether it is complete.
func (o *outbox) consider(ctx context.Context, name string, quiet time.Duration) error {
	if hidden(name) {
		return nil
	}
	if err := protocol.ValidOutboxName(name); err != nil {
		o.refuse(name, err.Error())
		return nil
	}
	fi, err := o.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // renamed or removed since
	}
	if err != nil {
		// os.Root refuses paths that leave the outbox through a link.
		o.refuse(name, "its path cannot be read inside the outbox")
		return nil
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		o.refuse(name, "symbolic links are not uploaded")
		return nil
	case fi.IsDir():
		return nil
	case !fi.Mode().IsRegular():
		o.refuse(name, "not a regular file")
		return nil
	}
	if quiet > 0 && time.Since(fi.ModTime()) < quiet {
		return nil // perhaps still being written: the close event or a later scan takes it
	}
	stamp := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	o.mu.Lock()
	if o.sent[name] == stamp {
		o.mu.Unlock()
		return nil
	}
	o.mu.Unlock()
	return o.upload(ctx, name, stamp)
}

func (o *outbox) upload(ctx context.Context, name string, stamp fileStamp) error {
	o.uploadMu.Lock() // one upload at a time: blob sequences stay dense
	defer o.uploadMu.Unlock()
	f, err := o.root.OpenFile(name, os.O_RDONLY|noFollow, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		o.refuse(name, "cannot be opened without following a link")
		return nil
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("outbox %q: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("outbox %q: %w", name, err)
	}
	o.mu.Lock()
	seq := o.nextBlob
	o.mu.Unlock()
	if err := o.store.Put(ctx, o.keys.Blob(seq), io.NewSectionReader(f, 0, size)); err != nil {
		return fmt.Errorf("upload outbox %q: %w", name, err)
	}
	// The sequence is taken only once the blob is stored, so a failed
	// upload leaves no gap (the host signs blob URLs from blob_next).
	o.mu.Lock()
	if o.nextBlob == seq {
		o.nextBlob++
	}
	o.mb.setBlobNext(o.nextBlob)
	o.mu.Unlock()
	of := protocol.OutboxFile{Name: name, BlobSeq: seq, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}
	o.mu.Lock()
	o.sent[name] = stamp
	o.files[name] = of
	o.mu.Unlock()
	o.mb.emit(protocol.Event{Type: protocol.EventOutbox, Outbox: &of})
	return nil
}

// scan considers every file in the outbox, skipping files modified within
// quiet (0 at the end, when the agent has exited).
func (o *outbox) scan(ctx context.Context, quiet time.Duration) error {
	var errs []error
	err := filepath.WalkDir(o.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking
		}
		rel, _ := filepath.Rel(o.dir, p)
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			if hidden(name) {
				return filepath.SkipDir
			}
			return nil
		}
		if err := o.consider(ctx, name, quiet); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// list returns the newest version of every uploaded file, by name.
func (o *outbox) list() []protocol.OutboxFile {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]protocol.OutboxFile, 0, len(o.files))
	for _, f := range o.files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// watch uploads files as they complete until ctx ends. It uses inotify and
// rescans every rescan interval as a safety net.
func (o *outbox) watch(ctx context.Context, rescan time.Duration) {
	changes := make(chan string, 256)
	w, err := newDirWatcher(o.dir, changes)
	if err != nil {
		o.log.Warn("inotify unavailable; scanning the outbox instead", "err", err)
	} else {
		defer w.close()
		go w.run(ctx)
	}
	t := time.NewTicker(rescan)
	defer t.Stop()
	var refilled <-chan struct{}
	if o.book != nil {
		refilled = o.book.refilled
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-refilled:
			// New presigned URLs: files that waited for them go now.
			if err := o.scan(ctx, 0); err != nil && ctx.Err() == nil && !errors.Is(err, errNoURL) {
				o.log.Warn("outbox scan", "err", err)
			}
		case name := <-changes:
			if strings.HasSuffix(name, "/") {
				// A new directory: files may have landed before its watch.
				name = ""
			}
			var err error
			if name == "" {
				err = o.scan(ctx, rescan)
			} else {
				err = o.consider(ctx, name, 0) // closed or renamed: complete
			}
			if err != nil && ctx.Err() == nil {
				o.log.Warn("outbox upload failed; will retry on the next scan", "err", err)
			}
		case <-t.C:
			if err := o.scan(ctx, rescan); err != nil && ctx.Err() == nil {
				o.log.Warn("outbox scan", "err", err)
			}
		}
	}
}
