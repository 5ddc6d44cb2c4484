package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Inbox reads the messages the supervisor delivers into the container: each
// one is a file named <seq>.json (seq zero-padded to protocol.SeqWidth
// digits) holding a protocol.Message, written through a dot-temp file and a
// rename, so a file with such a name is always complete.
type Inbox struct {
	// Dir is the inbox directory. Default: $SORTIE_INBOX, else /sortie/inbox.
	Dir string
	// Cursor is the file that records the highest sequence Next consumed.
	// Default: sortie-agent/inbox.cursor under os.TempDir().
	Cursor string
	// Poll is how often Dir is read while waiting. Default 100ms.
	Poll time.Duration
}

// Delivery is one inbox message as read from its file.
type Delivery struct {
	Message protocol.Message
	// Raw is the file's bytes, the message as the supervisor wrote it.
	Raw  []byte
	Path string
}

// ErrBadMessage marks an inbox file that breaks the contract: unparsable,
// of another protocol version, or whose seq disagrees with its name.
var ErrBadMessage = errors.New("bad inbox message")

func (in Inbox) withDefaults() Inbox {
	if in.Dir == "" {
		in.Dir = Dir(EnvInbox, DefaultInbox)
	}
	if in.Cursor == "" {
		in.Cursor = filepath.Join(os.TempDir(), "sortie-agent", "inbox.cursor")
	}
	if in.Poll <= 0 {
		in.Poll = 100 * time.Millisecond
	}
	return in
}

// Next waits for the first message after the cursor, records it as consumed
// and returns it. One consumer at a time: two concurrent calls may return
// the same message. A context deadline ends the wait with ctx.Err().
func (in Inbox) Next(ctx context.Context) (Delivery, error) {
	in = in.withDefaults()
	after, err := in.cursor()
	if err != nil {
		return Delivery{}, err
	}
	d, err := in.After(ctx, after)
	if err != nil {
		return Delivery{}, err
	}
	if err := in.setCursor(d.Message.Seq); err != nil {
		return Delivery{}, err
	}
	return d, nil
}

// After waits until a message with a sequence greater than seq is in the
// inbox and returns the lowest such one. It neither reads nor moves the
// cursor. A context deadline ends the wait with ctx.Err().
func (in Inbox) After(ctx context.Context, seq int64) (Delivery, error) {
	in = in.withDefaults()
	tick := time.NewTicker(in.Poll)
	defer tick.Stop()
	for {
		next, ok, err := in.lowestAfter(seq)
		if err != nil {
			return Delivery{}, err
		}
		if ok {
			return in.read(next)
		}
		select {
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// lowestAfter lists Dir for the lowest message sequence greater than seq.
func (in Inbox) lowestAfter(seq int64) (int64, bool, error) {
	entries, err := os.ReadDir(in.Dir)
	if err != nil {
		return 0, false, fmt.Errorf("read inbox: %w", err)
	}
	var best int64
	found := false
	for _, e := range entries {
		n, ok := parseMessageName(e.Name())
		if !ok || n <= seq || e.IsDir() {
			continue
		}
		if !found || n < best {
			best, found = n, true
		}
	}
	return best, found, nil
}

func (in Inbox) read(seq int64) (Delivery, error) {
	p := filepath.Join(in.Dir, MessageName(seq))
	raw, err := os.ReadFile(p)
	if err != nil {
		return Delivery{}, fmt.Errorf("read inbox message %d: %w", seq, err)
	}
	var m protocol.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return Delivery{}, fmt.Errorf("%w: %s: %w", ErrBadMessage, p, err)
	}
	if m.V != protocol.Version {
		return Delivery{}, fmt.Errorf("%w: %s speaks protocol version %d, this agent speaks %d", ErrBadMessage, p, m.V, protocol.Version)
	}
	if m.Seq != seq {
		return Delivery{}, fmt.Errorf("%w: %s says its seq is %d", ErrBadMessage, p, m.Seq)
	}
	return Delivery{Message: m, Raw: raw, Path: p}, nil
}

// MessageName is the file name of inbox message seq: 0000000042.json.
func MessageName(seq int64) string {
	return fmt.Sprintf("%0*d.json", protocol.SeqWidth, seq)
}

// parseMessageName returns the sequence of a message file name. Temp files
// (a leading dot) and anything else that is not <digits>.json are not
// messages.
func parseMessageName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ".json")
	if !ok || len(digits) != protocol.SeqWidth {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil
}

// cursor returns the highest sequence consumed so far, 0 when none.
func (in Inbox) cursor() (int64, error) {
	b, err := os.ReadFile(in.Cursor)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read inbox cursor: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("inbox cursor %s holds %q, not a sequence number", in.Cursor, b)
	}
	return n, nil
}

func (in Inbox) setCursor(seq int64) error {
	dir := filepath.Dir(in.Cursor)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write inbox cursor: %w", err)
	}
	if err := writeFileAtomic(dir, filepath.Base(in.Cursor), strings.NewReader(strconv.FormatInt(seq, 10)+"\n")); err != nil {
		return fmt.Errorf("write inbox cursor: %w", err)
	}
	return nil
}
