package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

// errNoURL means the book holds no URL for a key yet: the write or read is
// retried after the next refill, so nothing is lost.
var errNoURL = errors.New("no presigned URL for this key yet (waiting for a refill)")

// bookStore is the store of the presigned access mode: every object of the
// run through a presigned URL from the book, no credentials at all. It can
// reach exactly the keys the host signed, and only until they expire.
type bookStore struct {
	root string // the run's root prefix, "…/runs/<id>/"

	mu   sync.Mutex
	book *protocol.URLBook
	// refilled is signalled (without blocking) at every refill, so writes
	// that waited for URLs are retried at once.
	refilled chan struct{}
}

func newBookStore(root string, b *protocol.URLBook) (*bookStore, error) {
	if b == nil {
		return nil, errors.New("presigned store access without a URL book")
	}
	return &bookStore{root: root, book: b, refilled: make(chan struct{}, 1)}, nil
}

// replace swaps in a refilled book.
func (s *bookStore) replace(b *protocol.URLBook) {
	s.mu.Lock()
	s.book = b
	s.mu.Unlock()
	select {
	case s.refilled <- struct{}{}:
	default:
	}
}

func (s *bookStore) url(method, key string) (string, error) {
	name, ok := strings.CutPrefix(key, s.root)
	if !ok {
		return "", fmt.Errorf("%s %s: the key is outside this run", method, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.book.Get
	if method == "PUT" {
		m = s.book.Put
	}
	u, ok := m[name]
	if !ok {
		return "", fmt.Errorf("%s %s: %w", method, name, errNoURL)
	}
	return u, nil
}

// Get implements protocol.Store.
func (s *bookStore) Get(ctx context.Context, key string) ([]byte, error) {
	u, err := s.url("GET", key)
	if err != nil {
		return nil, err
	}
	return store.HTTPGet(ctx, u)
}

// Put implements protocol.Store.
func (s *bookStore) Put(ctx context.Context, key string, body io.ReadSeeker) error {
	u, err := s.url("PUT", key)
	if err != nil {
		return err
	}
	return store.HTTPPut(ctx, u, body)
}

// Delete implements protocol.Store: the VM never deletes.
func (s *bookStore) Delete(_ context.Context, key string) error {
	return fmt.Errorf("delete %s: the VM never deletes", key)
}
