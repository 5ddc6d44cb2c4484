package coordinator

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"github.com/sortie/sortie/pkg/protocol"
)

// flakyStore fails the next n Puts after landing them: the write reached the
// store but the caller saw an error, the hard case for sequence numbers.
type flakyStore struct {
	*memStore
	fail atomic.Int32
}

func (f *flakyStore) Put(ctx context.Context, key string, body io.ReadSeeker) error {
	if err := f.memStore.Put(ctx, key, body); err != nil {
		return err
	}
	if f.fail.Add(-1) >= 0 {
		return errors.New("connection reset")
	}
	return nil
}

// TestSendAfterFailedWrite: a message whose write failed keeps its sequence
// number and is written again, same bytes, before the next message; the VM
// never sees a gap or an overwritten message.
func TestSendAfterFailedWrite(t *testing.T) {
	st := &flakyStore{memStore: newMemStore()}
	keys := protocol.NewRunKeys("", "01run")
	r := &Run{c: &Coordinator{cfg: Config{Store: st}}, keys: keys, nextMsg: 1, done: make(chan struct{})}
	ctx := context.Background()
	st.fail.Store(1)
	if _, err := r.Send(ctx, "first"); err == nil {
		t.Fatal("Send succeeded through a failing store")
	}
	seq, err := r.Send(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	if seq != 2 {
		t.Errorf("second message got sequence %d, want 2", seq)
	}
	for i, want := range []string{"first", "second"} {
		var m protocol.Message
		if err := protocol.GetJSON(ctx, st, keys.Inbox(int64(i+1)), &m); err != nil {
			t.Fatal(err)
		}
		if m.Text != want || m.Seq != int64(i+1) {
			t.Errorf("inbox %d = %q (seq %d), want %q", i+1, m.Text, m.Seq, want)
		}
	}
}
