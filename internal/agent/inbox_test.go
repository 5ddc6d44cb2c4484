package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// deliver writes message seq into dir as the supervisor does: a dot-temp
// file renamed into place.
func deliver(t *testing.T, dir string, m protocol.Message) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp-"+MessageName(m.Seq))
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, MessageName(m.Seq))); err != nil {
		t.Fatal(err)
	}
}

func followUp(seq int64, text string) protocol.Message {
	return protocol.Message{V: protocol.Version, Seq: seq, Type: protocol.MessageFollowUp, Time: time.Unix(1700000000, 0).UTC(), Text: text}
}

func newInbox(t *testing.T) Inbox {
	t.Helper()
	return Inbox{Dir: t.TempDir(), Cursor: filepath.Join(t.TempDir(), "cursor", "inbox.cursor"), Poll: 10 * time.Millisecond}
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestInboxNextConsumesInOrder(t *testing.T) {
	in := newInbox(t)
	deliver(t, in.Dir, followUp(3, "third"))
	deliver(t, in.Dir, followUp(1, "first"))
	// Not messages: a temp file, other names, a directory.
	for _, name := range []string{".tmp-0000000000.json", "0000000002.json.tmp", "12.json", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(in.Dir, name), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(in.Dir, "0000000002.json"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{"first", "third"} {
		d, err := in.Next(timeout(t, 5*time.Second))
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if d.Message.Text != want {
			t.Errorf("Next text = %q, want %q", d.Message.Text, want)
		}
	}
	if _, err := in.Next(timeout(t, 50*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with no new message: err = %v, want a deadline", err)
	}
	b, err := os.ReadFile(in.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "3\n"; got != want {
		t.Errorf("cursor file = %q, want %q", got, want)
	}
}

func TestInboxNextWaitsForArrival(t *testing.T) {
	in := newInbox(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		deliver(t, in.Dir, followUp(1, "late"))
	}()
	d, err := in.Next(timeout(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if d.Message.Text != "late" || d.Message.Seq != 1 {
		t.Errorf("Next = seq %d %q, want seq 1 %q", d.Message.Seq, d.Message.Text, "late")
	}
}

func TestInboxAfterLeavesCursorAlone(t *testing.T) {
	in := newInbox(t)
	for seq, text := range map[int64]string{1: "one", 2: "two", 4: "four"} {
		deliver(t, in.Dir, followUp(seq, text))
	}
	tests := []struct {
		after int64
		want  string
	}{
		{0, "one"},
		{1, "two"},
		{2, "four"}, // sequences in the container's inbox may have gaps
		{3, "four"},
	}
	for _, tt := range tests {
		d, err := in.After(timeout(t, 5*time.Second), tt.after)
		if err != nil {
			t.Fatalf("After(%d): %v", tt.after, err)
		}
		if d.Message.Text != tt.want {
			t.Errorf("After(%d) = %q, want %q", tt.after, d.Message.Text, tt.want)
		}
	}
	if _, err := in.After(timeout(t, 50*time.Millisecond), 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("After(4): err = %v, want a deadline", err)
	}
	if _, err := os.Stat(in.Cursor); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("After wrote the cursor file (stat err %v)", err)
	}
}

func TestInboxRawIsTheFile(t *testing.T) {
	in := newInbox(t)
	m := followUp(1, "hi")
	m.Data = json.RawMessage(`{"k":1}`)
	deliver(t, in.Dir, m)
	d, err := in.Next(timeout(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(in.Dir, MessageName(1)))
	if string(d.Raw) != string(want) {
		t.Errorf("Raw = %s, want the file's bytes %s", d.Raw, want)
	}
	if string(d.Message.Data) != `{"k":1}` {
		t.Errorf("Data = %s, want {\"k\":1}", d.Message.Data)
	}
}

func TestInboxBadMessages(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", "{"},
		{"other version", `{"v":2,"seq":1,"type":"follow_up"}`},
		{"seq differs from name", `{"v":1,"seq":7,"type":"follow_up"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInbox(t)
			if err := os.WriteFile(filepath.Join(in.Dir, MessageName(1)), []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := in.Next(timeout(t, 5*time.Second))
			if !errors.Is(err, ErrBadMessage) {
				t.Errorf("Next: err = %v, want ErrBadMessage", err)
			}
		})
	}
}

func TestInboxErrors(t *testing.T) {
	t.Run("no inbox", func(t *testing.T) {
		in := newInbox(t)
		in.Dir = filepath.Join(in.Dir, "missing")
		if _, err := in.Next(timeout(t, 5*time.Second)); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next on a missing inbox: err = %v, want an immediate error", err)
		}
	})
	t.Run("corrupt cursor", func(t *testing.T) {
		in := newInbox(t)
		deliver(t, in.Dir, followUp(1, "x"))
		_ = os.MkdirAll(filepath.Dir(in.Cursor), 0o700)
		if err := os.WriteFile(in.Cursor, []byte("banana"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Next(timeout(t, 5*time.Second)); err == nil {
			t.Error("Next with a corrupt cursor: err = nil, want an error")
		}
	})
}

func TestParseMessageName(t *testing.T) {
	tests := []struct {
		name string
		seq  int64
		ok   bool
	}{
		{"0000000001.json", 1, true},
		{"0000000042.json", 42, true},
		{"9999999999.json", 9999999999, true},
		{".0000000001.json", 0, false},
		{"000000001.json", 0, false},
		{"00000000001.json", 0, false},
		{"000000000a.json", 0, false},
		{"+000000001.json", 0, false},
		{"0000000001.json.tmp", 0, false},
		{"0000000001", 0, false},
	}
	for _, tt := range tests {
		seq, ok := parseMessageName(tt.name)
		if seq != tt.seq || ok != tt.ok {
			t.Errorf("parseMessageName(%q) = %d, %v, want %d, %v", tt.name, seq, ok, tt.seq, tt.ok)
		}
	}
	if got, want := MessageName(42), "0000000042.json"; got != want {
		t.Errorf("MessageName(42) = %q, want %q", got, want)
	}
}
