package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/agent"
	"github.com/sortie/sortie/pkg/protocol"
)

// beAgent makes the test binary act as sortie-agent, so every invocation
// runs in a process of its own as in the container.
const beAgent = "SORTIE_AGENT_TEST_BE_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(beAgent) == "1" {
		os.Unsetenv(beAgent)
		os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type box struct {
	inbox, outbox, tmp string
}

func newBox(t *testing.T) box {
	t.Helper()
	return box{inbox: t.TempDir(), outbox: t.TempDir(), tmp: t.TempDir()}
}

type result struct {
	code           int
	stdout, stderr string
}

// agentCmd runs sortie-agent args with the box's inbox, outbox and TMPDIR
// (where the inbox cursor lives).
func (b box) agentCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), beAgent+"=1",
		agent.EnvInbox+"="+b.inbox, agent.EnvOutbox+"="+b.outbox, "TMPDIR="+b.tmp)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("sortie-agent %v: %v", args, err)
	}
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

func (b box) deliver(t *testing.T, m protocol.Message) {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(b.inbox, ".tmp")
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(b.inbox, agent.MessageName(m.Seq))); err != nil {
		t.Fatal(err)
	}
}

func msg(seq int64, text string) protocol.Message {
	return protocol.Message{V: 1, Seq: seq, Type: protocol.MessageFollowUp, Time: time.Unix(1700000000, 0).UTC(), Text: text}
}

func TestRunMode(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("run mode is Linux only")
	}
	b := newBox(t)
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"run with --", []string{"run", "--", "sh", "-c", "echo hi; exit 7"}, 7, "hi\n"},
		{"run without --", []string{"run", "sh", "-c", "exit 3"}, 3, ""},
		{"bare command", []string{"sh", "-c", "echo bare"}, 0, "bare\n"},
		{"killed", []string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{"not found", []string{"run", "--", "no-such-command-xyz"}, 127, ""},
		{"no command", []string{"run", "--"}, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.agentCmd(t, "", tt.args...)
			if r.code != tt.code || r.stdout != tt.out {
				t.Errorf("sortie-agent %q = exit %d, stdout %q; want exit %d, stdout %q (stderr %q)", tt.args, r.code, r.stdout, tt.code, tt.out, r.stderr)
			}
		})
	}
}

func TestWaitMessageMode(t *testing.T) {
	b := newBox(t)
	b.deliver(t, msg(1, "How many TODOs are there?"))
	b.deliver(t, msg(2, "second\n"))

	r := b.agentCmd(t, "", "wait-message", "-timeout", "5s")
	if r.code != 0 || r.stdout != "How many TODOs are there?\n" {
		t.Errorf("first wait-message = exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = b.agentCmd(t, "", "wait-message", "-timeout", "5")
	if r.code != 0 || r.stdout != "second\n" {
		t.Errorf("second wait-message = exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = b.agentCmd(t, "", "wait-message", "-timeout", "200ms")
	if r.code != exitTimeout || r.stdout != "" || !strings.Contains(r.stderr, "no message within 200ms") {
		t.Errorf("third wait-message = exit %d, stdout %q, stderr %q; want exit 2 and a message on stderr", r.code, r.stdout, r.stderr)
	}

	r = b.agentCmd(t, "", "wait-message", "-after", "0", "-json", "-timeout", "5s")
	var m protocol.Message
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || r.code != 0 {
		t.Fatalf("wait-message -json = exit %d, stdout %q: %v", r.code, r.stdout, err)
	}
	if m.Seq != 1 || m.Type != protocol.MessageFollowUp || m.V != 1 {
		t.Errorf("wait-message -json = %+v, want message 1", m)
	}

	// A message that arrives while waiting.
	go func() {
		time.Sleep(300 * time.Millisecond)
		b.deliver(t, msg(5, "late"))
	}()
	r = b.agentCmd(t, "", "wait-message", "-timeout", "10s")
	if r.code != 0 || r.stdout != "late\n" {
		t.Errorf("waiting wait-message = exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestWaitMessageDataOnly(t *testing.T) {
	b := newBox(t)
	m := msg(1, "")
	m.Data = json.RawMessage(`{"question":"x"}`)
	b.deliver(t, m)
	r := b.agentCmd(t, "", "wait-message", "-timeout", "5s")
	if r.code != 0 || r.stdout != `{"question":"x"}`+"\n" {
		t.Errorf("wait-message on a data-only message = exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestWaitMessageUsage(t *testing.T) {
	b := newBox(t)
	for _, args := range [][]string{
		{"wait-message", "-timeout", "soon"},
		{"wait-message", "-timeout", "-1s"},
		{"wait-message", "-bogus"},
		{"wait-message", "extra"},
	} {
		if r := b.agentCmd(t, "", args...); r.code != exitUsage {
			t.Errorf("sortie-agent %q = exit %d, want %d (stderr %q)", args, r.code, exitUsage, r.stderr)
		}
	}
}

func TestOutboxMode(t *testing.T) {
	b := newBox(t)
	src := filepath.Join(t.TempDir(), "src.txt")
	if err := os.WriteFile(src, []byte("from a file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		file  string // relative to the outbox; "" when nothing is written
		want  string
	}{
		{"stdin", "from stdin\n", []string{"outbox", "report.md"}, 0, "report.md", "from stdin\n"},
		{"dash", "dash\n", []string{"outbox", "reply.md", "-"}, 0, "reply.md", "dash\n"},
		{"file into subdir", "", []string{"outbox", "artifacts/m.txt", src}, 0, "artifacts/m.txt", "from a file\n"},
		{"dot-dot", "x", []string{"outbox", "../x"}, exitUsage, "", ""},
		{"absolute", "x", []string{"outbox", "/tmp/x"}, exitUsage, "", ""},
		{"hidden", "x", []string{"outbox", ".x"}, exitUsage, "", ""},
		{"missing source", "", []string{"outbox", "y.txt", "/no/such/file"}, exitFailed, "", ""},
		{"directory source", "", []string{"outbox", "y.txt", t.TempDir()}, exitFailed, "", ""},
		{"no name", "", []string{"outbox"}, exitUsage, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.agentCmd(t, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Fatalf("sortie-agent %q = exit %d, want %d (stderr %q)", tt.args, r.code, tt.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if tt.file == "" {
				return
			}
			got, err := os.ReadFile(filepath.Join(b.outbox, tt.file))
			if err != nil || string(got) != tt.want {
				t.Errorf("%s = %q (%v), want %q", tt.file, got, err, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(b.outbox)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, ","), "artifacts,reply.md,report.md"; got != want {
		t.Errorf("outbox holds %s, want %s", got, want)
	}
}

func TestHelpAndVersion(t *testing.T) {
	b := newBox(t)
	if r := b.agentCmd(t, "", "help"); r.code != 0 || !strings.Contains(r.stdout, "/sortie/outbox") {
		t.Errorf("help = exit %d, stdout %q", r.code, r.stdout)
	}
	if r := b.agentCmd(t, ""); r.code != exitUsage || r.stdout != "" || r.stderr == "" {
		t.Errorf("no arguments = exit %d, stdout %q; want usage on stderr, exit %d", r.code, r.stdout, exitUsage)
	}
	if r := b.agentCmd(t, "", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "sortie-agent ") {
		t.Errorf("version = exit %d, stdout %q", r.code, r.stdout)
	}
}
