package cli

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/hetzner"
	"github.com/sortie/sortie/internal/hcloudfake"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestLsAndReap: `coordinator ls` shows this owner's servers with their
// run state and a cost from live pricing; `reap --dry-run` says what it
// would delete and `reap` deletes exactly that, never another owner's.
func TestLsAndReap(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MinIO")
	}
	fake := hcloudfake.New(hcloudfake.WithToken("cli-token"), hcloudfake.WithSpecValidation(t, ""))
	fake.Start()
	defer fake.Close()
	sc := testenv.MinIO(t)
	s3, err := store.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := hetzner.New(hetzner.Config{Token: "cli-token", Endpoint: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mk := func(run, owner string, expires time.Time) {
		t.Helper()
		_, err := prov.Create(ctx, coordinator.CreateRequest{Name: "sortie-" + run, RunID: run, UserData: []byte("#cloud-config\n"),
			Labels: map[string]string{"managed-by": "sortie", "owner": owner, "run": run, "expires": strconv.FormatInt(expires.Unix(), 10)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("01live", "cli-owner", time.Now().Add(time.Hour))
	mk("01done", "cli-owner", time.Now().Add(time.Hour))
	mk("01gone", "cli-owner", time.Now().Add(-time.Hour))
	mk("01theirs", "other-owner", time.Now().Add(-time.Hour))
	if err := protocol.PutJSON(ctx, s3, protocol.NewRunKeys("", "01live").Hello(), &protocol.Hello{V: 1, RunID: "01live"}); err != nil {
		t.Fatal(err)
	}
	if err := protocol.PutJSON(ctx, s3, protocol.NewRunKeys("", "01done").Result(), &protocol.Result{V: 1, RunID: "01done"}); err != nil {
		t.Fatal(err)
	}

	t.Setenv("HCLOUD_TOKEN", "cli-token")
	t.Setenv("HCLOUD_ENDPOINT", fake.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", sc.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sc.SecretAccessKey.Reveal())
	sup := testenv.SupervisorBinary(t)
	cli := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		base := []string{"--owner", "cli-owner", "--bucket", sc.Bucket, "--endpoint", sc.Endpoint, "--path-style", "--supervisor", sup, "--state-dir", t.TempDir()}
		code := Main(ctx, append(args, base...), &out, &errb, "test")
		return out.String(), errb.String(), code
	}
	out, errs, code := cli("ls")
	if code != 0 {
		t.Fatalf("ls exit %d: %s", code, errs)
	}
	for _, want := range []string{"sortie-01live", "running", "sortie-01done", "finished", "sortie-01gone", "expired", "EUR"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "01theirs") {
		t.Errorf("ls shows another owner's server:\n%s", out)
	}
	out, _, code = cli("reap", "--dry-run")
	if code != 0 || !strings.Contains(out, "would delete sortie-01done") || !strings.Contains(out, "would delete sortie-01gone") || strings.Contains(out, "01live") {
		t.Errorf("reap --dry-run (exit %d):\n%s", code, out)
	}
	if n := len(fake.Servers()); n != 4 {
		t.Errorf("a dry run deleted something: %d servers left, want 4", n)
	}
	out, errs, code = cli("reap")
	if code != 0 {
		t.Fatalf("reap exit %d: %s", code, errs)
	}
	var left []string
	for _, s := range fake.Servers() {
		if s.Status != "deleting" {
			left = append(left, s.Labels["run"])
		}
	}
	if strings.Join(left, ",") != "01live,01theirs" {
		t.Errorf("servers left after reap = %v, want 01live and the other owner's; reap said:\n%s", left, out)
	}
}
