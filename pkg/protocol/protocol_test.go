package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie/sortie/pkg/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files of the current version")

var t0 = time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)

// messages has one value of every message type of version 1, by golden name.
func messages() map[string]any {
	return map[string]any{
		"spec": &protocol.Spec{
			V: 1, RunID: "01m8ydqp90sbasawf1jke8nmjw", Image: "sortie/agent:dev",
			Entrypoint: []string{"/usr/local/bin/sortie-agent", "run", "--"},
			Command:    []string{"sh", "/workspace/agent.sh"},
			Env:        map[string]string{"MODE": "demo"}, WorkDir: "/workspace", Workspace: true,
			Input: json.RawMessage(`{"task":"summarise"}`), TimeoutMS: 600000, StopGraceMS: 10000,
			Deadline: t0.Add(20 * time.Minute), Limits: protocol.Limits{MemoryBytes: 512 << 20, NanoCPUs: 1500000000, PidsLimit: 256},
			Pull: false, CreatedAt: t0,
		},
		"boot": &protocol.Boot{
			V: 1, RunID: "01m8ydqp90sbasawf1jke8nmjw", BootstrapURL: "https://store.example/b/runs/01m8ydqp90sbasawf1jke8nmjw/bootstrap.sealed?X-Amz-Signature=0",
			BootstrapKey: bytes.Repeat([]byte{7}, 32), Deadline: t0.Add(20 * time.Minute), SelfDestruct: "poweroff",
		},
		"bootstrap": &protocol.Bootstrap{V: 1, RunID: "01m8ydqp90sbasawf1jke8nmjw", Store: protocol.StoreAccess{
			Mode: "credentials", Endpoint: "https://store.example", Region: "us-east-1", Bucket: "b", Prefix: "p",
			PathStyle: true, AccessKeyID: "AK", SecretAccessKey: "example-secret", Expires: t0.Add(time.Hour),
		}},
		"bootstrap-registry": &protocol.Bootstrap{V: 1, RunID: "01m8ydqp90sbasawf1jke8nmjw", Store: protocol.StoreAccess{
			Mode: "credentials", Endpoint: "https://store.example", Region: "us-east-1", Bucket: "b", Prefix: "p",
			PathStyle: true, AccessKeyID: "AK", SecretAccessKey: "example-secret", Expires: t0.Add(time.Hour),
		}, Registry: &protocol.RegistryAuth{Server: "ghcr.io", Username: "robot", Password: "example-registry-password"}},
		"hello":             &protocol.Hello{V: 1, RunID: "01m8ydqp90sbasawf1jke8nmjw", SupervisorVersion: "v0.1.0", Hostname: "sortie-01m8", Arch: "amd64", StartedAt: t0, BootMS: 12, Time: t0.Add(12 * time.Millisecond)},
		"status":            &protocol.Status{V: 1, RunID: "01m8ydqp90sbasawf1jke8nmjw", Phase: "running", LastEvent: 42, InboxNext: 2, Beat: 17, Time: t0},
		"event-phase":       &protocol.Event{V: 1, Seq: 1, Time: t0, Type: "phase", Phase: &protocol.PhaseTiming{Name: "bootstrap", DurationMS: 12}},
		"event-log":         &protocol.Event{V: 1, Seq: 2, Time: t0, Type: "log", Log: &protocol.LogChunk{Stream: "stdout", Offset: 0, Data: []byte("hello\n")}},
		"event-outbox":      &protocol.Event{V: 1, Seq: 3, Time: t0, Type: "outbox", Outbox: &protocol.OutboxFile{Name: "report.md", BlobSeq: 1, Size: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}},
		"event-message":     &protocol.Event{V: 1, Seq: 4, Time: t0, Type: "message", Message: &protocol.MessageAck{Seq: 1, Type: "follow_up"}},
		"event-notice":      &protocol.Event{V: 1, Seq: 5, Time: t0, Type: "notice", Notice: &protocol.Notice{Level: "warning", Text: `outbox entry "x" refused: symbolic links are not uploaded`}},
		"message-follow-up": &protocol.Message{V: 1, Seq: 1, Type: "follow_up", Time: t0, Text: "How many TODOs?", Data: json.RawMessage(`{"k":1}`)},
		"message-cancel":    &protocol.Message{V: 1, Seq: 2, Type: "cancel", Time: t0},
		"message-refill": &protocol.Message{V: 1, Seq: 3, Type: "refill", Time: t0, Book: &protocol.URLBook{
			Expires: t0.Add(15 * time.Minute),
			Get:     map[string]string{"spec.json": "https://store.example/b/p/runs/01m8ydqp90sbasawf1jke8nmjw/spec.json?X-Amz-Signature=0"},
			Put:     map[string]string{"events/0000000001.json": "https://store.example/b/p/runs/01m8ydqp90sbasawf1jke8nmjw/events/0000000001.json?X-Amz-Signature=0"},
		}},
		"message-refill-sts": &protocol.Message{V: 1, Seq: 4, Type: "refill", Time: t0, Credentials: &protocol.SessionCredentials{
			AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "example-secret", SessionToken: "example-token", Expires: t0.Add(15 * time.Minute),
		}},
		"result": &protocol.Result{V: 1, RunID: "01m8ydqp90sbasawf1jke8nmjw", ExitCode: 3, Error: "",
			Phases:    []protocol.PhaseTiming{{Name: "bootstrap", DurationMS: 12}, {Name: "running", DurationMS: 5000}},
			Outbox:    []protocol.OutboxFile{{Name: "report.md", BlobSeq: 1, Size: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}},
			LastEvent: 5, StartedAt: t0, EndedAt: t0.Add(6 * time.Second)},
	}
}

// TestGolden checks every message type of version 1 against its golden
// file: the bytes we write match it, and it decodes back to the same value.
// Released golden files never change: -update is only for a new version.
func TestGolden(t *testing.T) {
	for name, v := range messages() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "v1", name+".json")
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("golden file: %v (run go test -update once for a new version)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("encoding differs from %s (-now +golden):\n%s", path, diff)
			}
			back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := protocol.Decode(got, back); err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			if diff := cmp.Diff(v, back); diff != "" {
				t.Errorf("golden decodes to a different value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeVersion(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantVer bool
		wantErr string
	}{
		{"future version", `{"v":2,"run_id":"x"}`, true, "protocol version 2 is not supported"},
		{"zero version", `{"v":0}`, true, "protocol version 0"},
		{"no version", `{"run_id":"x"}`, false, `no protocol version field "v"`},
		{"not json", `{`, false, "decode message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s protocol.Spec
			err := protocol.Decode([]byte(tt.in), &s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode(%s) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			var ve *protocol.VersionError
			if got := errors.As(err, &ve); got != tt.wantVer {
				t.Errorf("errors.As VersionError = %v, want %v", got, tt.wantVer)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	key, err := protocol.NewBootstrapKey()
	if err != nil {
		t.Fatal(err)
	}
	b := messages()["bootstrap"].(*protocol.Bootstrap)
	sealed, err := protocol.Seal(key, b)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("example-secret")) {
		t.Fatal("sealed bundle contains the secret in clear")
	}
	got, err := protocol.Open(key, b.RunID, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, got); diff != "" {
		t.Errorf("Open(Seal(b)) differs (-want +got):\n%s", diff)
	}
	other, _ := protocol.NewBootstrapKey()
	tampered := append([]byte{}, sealed...)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct {
		key    []byte
		run    string
		sealed []byte
	}{
		"wrong key": {other, b.RunID, sealed},
		"wrong run": {key, "01other", sealed},
		"tampered":  {key, b.RunID, tampered},
		"truncated": {key, b.RunID, sealed[:10]},
	} {
		if _, err := protocol.Open(tc.key, tc.run, tc.sealed); !errors.Is(err, protocol.ErrSealed) {
			t.Errorf("%s: Open = %v, want ErrSealed", name, err)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := protocol.Secret("hunter2-very-secret")
	for _, got := range []string{s.String(), s.GoString(), fmtSprintf("%v %s %q %+v %#v", s, s, s, s, s)} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("secret printed: %q", got)
		}
	}
	st := protocol.StoreAccess{SecretAccessKey: s}
	if got := fmtSprintf("%+v", st); strings.Contains(got, "hunter2") {
		t.Errorf("secret printed inside a struct: %q", got)
	}
	ra := &protocol.RegistryAuth{Server: "ghcr.io", Username: "u", Password: s}
	if got := fmtSprintf("%+v %#v", ra, ra); strings.Contains(got, "hunter2") {
		t.Errorf("registry password printed: %q", got)
	}
}

func TestKeys(t *testing.T) {
	k := protocol.NewRunKeys("/team/", "01abc")
	tests := map[string]string{
		k.Spec():      "team/runs/01abc/spec.json",
		k.Event(7):    "team/runs/01abc/events/0000000007.json",
		k.Inbox(12):   "team/runs/01abc/inbox/0000000012.json",
		k.Blob(3):     "team/runs/01abc/blobs/0000000003",
		k.Status():    "team/runs/01abc/status.json",
		k.Result():    "team/runs/01abc/result.json",
		k.Bootstrap(): "team/runs/01abc/bootstrap.sealed",
		protocol.SupervisorKey("", "arm64", "ab"): "bin/vm-supervisor/arm64/ab",
	}
	for got, want := range tests {
		if got != want {
			t.Errorf("key = %q, want %q", got, want)
		}
	}
	if a, b := k.Event(9), k.Event(10); a >= b {
		t.Errorf("event keys do not sort numerically: %q >= %q", a, b)
	}
}

func TestValidOutboxName(t *testing.T) {
	good := []string{"report.md", "dir/file.txt", "a..b", "...", "ünï.txt"}
	bad := []string{"", "..", "../x", "a/../b", "/etc/passwd", "a//b", "./a", "a/.", "a\\b", "a\x00b", "a\nb", strings.Repeat("x", 256)}
	for _, n := range good {
		if err := protocol.ValidOutboxName(n); err != nil {
			t.Errorf("ValidOutboxName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := protocol.ValidOutboxName(n); err == nil {
			t.Errorf("ValidOutboxName(%q) = nil, want an error", n)
		}
	}
}
