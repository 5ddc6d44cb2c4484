package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const noFollow = syscall.O_NOFOLLOW

// dirWatcher reports files under a directory tree that were closed after
// writing or moved in, as slash-separated names relative to the root. New
// subdirectories are watched as they appear (and scanned, so files written
// before the watch was added are not missed by the caller's next scan).
type dirWatcher struct {
	fd   int
	root string
	out  chan<- string

	mu   sync.Mutex
	dirs map[int]string // watch descriptor -> relative dir ("" for root)
}

func newDirWatcher(root string, out chan<- string) (*dirWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	w := &dirWatcher{fd: fd, root: root, out: out, dirs: map[int]string{}}
	if err := w.add(""); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return w, nil
}

func (w *dirWatcher) add(rel string) error {
	mask := uint32(unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DONT_FOLLOW)
	wd, err := unix.InotifyAddWatch(w.fd, filepath.Join(w.root, rel), mask)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.dirs[wd] = rel
	w.mu.Unlock()
	return nil
}

func (w *dirWatcher) close() { unix.Close(w.fd) }

// run reads events until ctx ends. The fd is non-blocking and polled, so
// cancellation is prompt.
func (w *dirWatcher) run(ctx context.Context) {
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 200)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n == 0 {
			continue
		}
		r, err := unix.Read(w.fd, buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		w.parse(ctx, buf[:r])
	}
}

func (w *dirWatcher) parse(ctx context.Context, b []byte) {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		nameLen := int(ev.Len)
		raw := b[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+nameLen]
		b = b[unix.SizeofInotifyEvent+nameLen:]
		name := strings.TrimRight(string(raw), "\x00")
		w.mu.Lock()
		dir, ok := w.dirs[int(ev.Wd)]
		w.mu.Unlock()
		if !ok || name == "" {
			continue
		}
		rel := filepath.ToSlash(filepath.Join(dir, name))
		isDir := ev.Mask&unix.IN_ISDIR != 0
		switch {
		case isDir && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
			if fi, err := os.Lstat(filepath.Join(w.root, rel)); err == nil && fi.IsDir() {
				_ = w.add(rel)
				w.send(ctx, rel+"/")
			}
		case !isDir && ev.Mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO) != 0:
			w.send(ctx, rel)
		case !isDir && ev.Mask&unix.IN_CREATE != 0:
			// A symlink or special file appears only as a create.
			if fi, err := os.Lstat(filepath.Join(w.root, rel)); err == nil && !fi.Mode().IsRegular() {
				w.send(ctx, rel)
			}
		}
	}
}

func (w *dirWatcher) send(ctx context.Context, name string) {
	select {
	case w.out <- name:
	case <-ctx.Done():
	}
}
