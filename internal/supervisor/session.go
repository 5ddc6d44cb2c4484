package supervisor

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/sortie/sortie/pkg/protocol"
)

// refillable is a store whose access the host renews through the inbox.
type refillable interface {
	refill(m *protocol.Message) error
}

// refill implements refillable for the presigned mode: a new book.
func (s *bookStore) refill(m *protocol.Message) error {
	if m.Book == nil {
		return errors.New("this run uses presigned access, but the refill holds no URL book")
	}
	s.replace(m.Book)
	return nil
}

// sessionStore is the store of the sts access mode: S3 with temporary
// credentials that the host narrowed to this run's prefix and renews
// through the inbox before they expire.
type sessionStore struct {
	access protocol.StoreAccess
	open   func(context.Context, protocol.StoreAccess) (protocol.Store, error)

	mu  sync.RWMutex
	cur protocol.Store
}

func newSessionStore(ctx context.Context, a protocol.StoreAccess, open func(context.Context, protocol.StoreAccess) (protocol.Store, error)) (*sessionStore, error) {
	if a.AccessKeyID == "" || a.SessionToken == "" {
		return nil, errors.New("sts store access without temporary credentials")
	}
	a.Mode = protocol.AccessCredentials
	cur, err := open(ctx, a)
	if err != nil {
		return nil, err
	}
	return &sessionStore{access: a, open: open, cur: cur}, nil
}

func (s *sessionStore) refill(m *protocol.Message) error {
	c := m.Credentials
	if c == nil || c.AccessKeyID == "" || c.SessionToken == "" {
		return errors.New("this run uses sts access, but the refill holds no temporary credentials")
	}
	a := s.access
	a.AccessKeyID, a.SecretAccessKey, a.SessionToken, a.Expires = c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expires
	cur, err := s.open(context.Background(), a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.access, s.cur = a, cur
	s.mu.Unlock()
	return nil
}

func (s *sessionStore) store() protocol.Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

// Get implements protocol.Store.
func (s *sessionStore) Get(ctx context.Context, key string) ([]byte, error) {
	return s.store().Get(ctx, key)
}

// Put implements protocol.Store.
func (s *sessionStore) Put(ctx context.Context, key string, body io.ReadSeeker) error {
	return s.store().Put(ctx, key, body)
}

// Delete implements protocol.Store.
func (s *sessionStore) Delete(ctx context.Context, key string) error {
	return s.store().Delete(ctx, key)
}
