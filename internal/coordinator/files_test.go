package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// memStore is an in-memory Store that behaves like S3 for what we use.
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func newMemStore() *memStore { return &memStore{objs: map[string][]byte{}} }

func (m *memStore) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, protocol.ErrNotFound)
	}
	return append([]byte(nil), b...), nil
}

func (m *memStore) Put(_ context.Context, key string, body io.ReadSeeker) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
	return nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}

func (m *memStore) Exists(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objs[key]
	return ok, nil
}

func (m *memStore) PresignGet(_ context.Context, key string, _ time.Duration) (string, error) {
	return "http://127.0.0.1:1/" + key, nil
}

func (m *memStore) PresignPut(_ context.Context, key string, _ time.Duration) (string, error) {
	return "http://127.0.0.1:1/" + key + "?put", nil
}

// TestSaveOutboxRefusesEscapes: an outbox event from a VM (which the host
// does not trust) can never write outside the run's outbox folder.
func TestSaveOutboxRefusesEscapes(t *testing.T) {
	st := newMemStore()
	keys := protocol.NewRunKeys("", "01run")
	parent := t.TempDir()
	outDir := filepath.Join(parent, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink planted in the outbox folder must not be followed either.
	if err := os.Symlink(parent, filepath.Join(outDir, "link")); err != nil {
		t.Fatal(err)
	}
	r := &Run{c: &Coordinator{cfg: Config{Store: st}}, keys: keys, spec: &RunSpec{OutboxDir: outDir}}
	data := []byte("payload")
	sum := sha256.Sum256(data)
	if err := st.Put(context.Background(), keys.Blob(1), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../escape.txt", "a/../../escape.txt", "/tmp/escape.txt", "..", "link/escape.txt"} {
		t.Run(name, func(t *testing.T) {
			_, err := r.saveOutbox(context.Background(), &protocol.OutboxFile{Name: name, BlobSeq: 1, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
			if err == nil {
				t.Fatalf("saveOutbox(%q) succeeded, want a refusal", name)
			}
			if _, err := os.Stat(filepath.Join(parent, "escape.txt")); err == nil {
				t.Fatalf("saveOutbox(%q) wrote outside the outbox folder", name)
			}
		})
	}
	// A good name is saved; a blob that does not match its digest is refused.
	p, err := r.saveOutbox(context.Background(), &protocol.OutboxFile{Name: "ok/file.txt", BlobSeq: 1, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, data) {
		t.Errorf("saved %q, want %q", b, data)
	}
	_, err = r.saveOutbox(context.Background(), &protocol.OutboxFile{Name: "bad.txt", BlobSeq: 1, Size: 7, SHA256: strings.Repeat("0", 64)})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("saveOutbox with a wrong digest = %v, want a mismatch error", err)
	}
}
