package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// inbox reads the host's messages in sequence order (the VM never lists: it
// GETs the next computable key until it exists) and delivers them: a
// follow-up becomes a file in the container's inbox directory, a cancel
// stops the run.
type inbox struct {
	dir    string
	store  protocol.Store
	keys   protocol.RunKeys
	mb     *mailbox
	log    *slog.Logger
	next   int64
	cancel func()
	access refillable // the store, in the presigned and sts access modes
}

// poll delivers messages until ctx ends, checking every interval while the
// inbox is empty and draining it without delay otherwise.
func (in *inbox) poll(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			more, err := in.step(ctx)
			if err != nil && ctx.Err() == nil {
				in.log.Warn("inbox read failed; will retry", "seq", in.next, "err", err)
			}
			if !more {
				break
			}
		}
		t.Reset(interval)
	}
}

// step reads and delivers one message; it reports whether there was one.
func (in *inbox) step(ctx context.Context) (bool, error) {
	b, err := in.store.Get(ctx, in.keys.Inbox(in.next))
	switch {
	case errors.Is(err, protocol.ErrNotFound), errors.Is(err, errNoURL):
		return false, nil
	case err != nil:
		return false, err // the store: retried
	}
	var m protocol.Message
	// A message that cannot be read (another version, not JSON) is skipped
	// with a notice: retrying would block the inbox for good.
	if err := protocol.Decode(b, &m); err != nil {
		in.notice(fmt.Sprintf("inbox message %d skipped: %v", in.next, err))
	} else if m.Seq != in.next {
		in.notice(fmt.Sprintf("inbox message at sequence %d says it is %d; skipped", in.next, m.Seq))
	} else if err := in.deliver(&m); err != nil {
		return false, err
	}
	in.next++
	in.mb.setInboxNext(in.next)
	return true, nil
}

func (in *inbox) deliver(m *protocol.Message) error {
	switch m.Type {
	case protocol.MessageFollowUp:
		if err := writeAtomic(in.dir, fmt.Sprintf("%0*d.json", protocol.SeqWidth, m.Seq), m); err != nil {
			return fmt.Errorf("deliver inbox message %d: %w", m.Seq, err)
		}
	case protocol.MessageCancel:
		in.cancel()
	case protocol.MessageRefill:
		if in.access == nil {
			in.notice(fmt.Sprintf("inbox message %d is a refill, but this run's store access needs none; skipped", m.Seq))
			return nil
		}
		if err := in.access.refill(m); err != nil {
			in.notice(fmt.Sprintf("inbox message %d skipped: %v", m.Seq, err))
			return nil
		}
	default:
		in.notice(fmt.Sprintf("inbox message %d has unknown type %q; skipped", m.Seq, m.Type))
		return nil
	}
	in.mb.emit(protocol.Event{Type: protocol.EventMessage, Message: &protocol.MessageAck{Seq: m.Seq, Type: m.Type}})
	return nil
}

func (in *inbox) notice(text string) {
	in.log.Warn(text)
	in.mb.emit(protocol.Event{Type: protocol.EventNotice, Notice: &protocol.Notice{Level: protocol.NoticeWarning, Text: text}})
}

// writeAtomic writes v as JSON to dir/name through a dot-temp file and a
// rename, so the agent never sees a partial message.
func writeAtomic(dir, name string, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
