package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/sortie/sortie/internal/hcloudfake"
	"github.com/sortie/sortie/internal/testenv"
)

// clearSortieEnv makes the test independent of the caller's configuration.
func clearSortieEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"SORTIE_CONFIG", "SORTIE_BUCKET", "SORTIE_S3_ENDPOINT", "SORTIE_S3_REGION", "SORTIE_S3_PREFIX",
		"SORTIE_S3_PATH_STYLE", "SORTIE_STS_ENDPOINT", "SORTIE_STS_ROLE_ARN", "SORTIE_SUPERVISOR",
		"HCLOUD_TOKEN", "HCLOUD_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
}

func doctor(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"doctor", "--state-dir", t.TempDir()}, args...), &out, &errb, "test")
	return out.String(), errb.String(), code
}

// wantLines checks that out has a line for each pattern: status, check
// name, then the detail, as `coordinator doctor` prints them.
func wantLines(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)^` + p).MatchString(out) {
			t.Errorf("output lacks a line matching %q:\n%s", p, out)
		}
	}
}

// TestDoctorCommandEmbedded: on the embedded default with Docker and a
// supervisor, every line is ok or info and the exit code is 0.
func TestDoctorCommandEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	clearSortieEnv(t)
	testenv.Docker(t)
	out, errs, code := doctor(t, "--supervisor", testenv.SupervisorBinary(t))
	if code != 0 {
		t.Fatalf("exit %d, want 0; stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	wantLines(t, out,
		`info\s+config\s+no config file`,
		`ok\s+provider\s+local`,
		`ok\s+access\s+presigned`,
		`ok\s+store\s+the embedded store .*local only`,
		`info\s+sts\s+the embedded store has no STS`,
		`ok\s+docker\s+Docker engine`,
		`ok\s+supervisor\s+`,
		`nothing failed: ready to run\.`,
	)
	if strings.Contains(out, "FAIL") || strings.Contains(out, "warn ") {
		t.Errorf("a check failed or warned:\n%s", out)
	}
}

// TestDoctorCommandStoreFails: a wrong secret key is named, the command
// exits 1, and no key appears in the text or JSON output.
func TestDoctorCommandStoreFails(t *testing.T) {
	clearSortieEnv(t)
	cfg := testenv.MinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-doctor-secret-123")
	args := []string{"--bucket", cfg.Bucket, "--endpoint", cfg.Endpoint, "--path-style", "--supervisor", testenv.SupervisorBinary(t)}
	out, errs, code := doctor(t, args...)
	if code != ExitChecksFailed {
		t.Errorf("exit %d, want %d", code, ExitChecksFailed)
	}
	wantLines(t, out,
		`FAIL\s+store\s+the store refused the secret key .*check AWS_SECRET_ACCESS_KEY`,
		`ok\s+clock\s+`,
		`1 check failed, \d+ warnings?: fix the FAIL lines before a run\.`,
	)
	jsonOut, jsonErrs, jsonCode := doctor(t, append(args, "--json")...)
	if jsonCode != ExitChecksFailed {
		t.Errorf("--json: exit %d, want %d", jsonCode, ExitChecksFailed)
	}
	var failed []string
	for _, line := range strings.Split(strings.TrimSpace(jsonOut), "\n") {
		var c struct{ Name, Status, Detail string }
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("--json line %q: %v", line, err)
		}
		if c.Status == "FAIL" {
			failed = append(failed, c.Name)
		}
	}
	if strings.Join(failed, ",") != "store" {
		t.Errorf("--json: failed checks %v, want [store]", failed)
	}
	for _, s := range []string{cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), "wrong-doctor-secret-123"} {
		if all := out + errs + jsonOut + jsonErrs; strings.Contains(all, s) {
			t.Errorf("the output holds a key (%d bytes):\n%s", len(s), all)
		}
	}
}

// TestDoctorCommandHetzner: a read-write token passes (exit 0), a
// read-only one cannot create servers (exit 1); the token never shows.
func TestDoctorCommandHetzner(t *testing.T) {
	clearSortieEnv(t)
	fake := hcloudfake.New(hcloudfake.WithToken("rw-cli-doctor-token"), hcloudfake.WithReadOnlyToken("ro-cli-doctor-token"), hcloudfake.WithSpecValidation(t, ""))
	fake.Start()
	t.Cleanup(fake.Close)
	cfg := testenv.MinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretAccessKey.Reveal())
	t.Setenv("HCLOUD_ENDPOINT", fake.URL())
	args := []string{"--bucket", cfg.Bucket, "--endpoint", cfg.Endpoint, "--path-style", "--supervisor", testenv.SupervisorBinary(t)}
	types := "cx23, cpx22"
	if runtime.GOARCH == "arm64" {
		// The supervisor is built for this machine: ask for arm servers.
		conf := filepath.Join(t.TempDir(), "sortie.yaml")
		if err := os.WriteFile(conf, []byte("hetzner: {arch: arm64, server_types: [cax11]}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args, types = append(args, "--config", conf), "cax11"
	}

	t.Setenv("HCLOUD_TOKEN", "rw-cli-doctor-token")
	out, errs, code := doctor(t, args...)
	if code != 0 {
		t.Errorf("read-write token: exit %d, want 0; stdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	wantLines(t, out,
		`ok\s+provider\s+hetzner`,
		`ok\s+store\s+bucket`,
		`warn\s+store reach\s+.*on this machine`,
		`ok\s+hetzner token\s+`,
		`ok\s+hetzner write\s+`,
		`ok\s+hetzner catalog\s+server types `+types,
	)
	all := out + errs

	t.Setenv("HCLOUD_TOKEN", "ro-cli-doctor-token")
	out, errs, code = doctor(t, args...)
	if code != ExitChecksFailed {
		t.Errorf("read-only token: exit %d, want %d", code, ExitChecksFailed)
	}
	wantLines(t, out, `FAIL\s+hetzner write\s+HCLOUD_TOKEN is read-only, so it cannot create servers`)
	all += out + errs

	t.Setenv("HCLOUD_TOKEN", "unknown-cli-doctor-token")
	out, errs, code = doctor(t, args...)
	if code != ExitChecksFailed {
		t.Errorf("unknown token: exit %d, want %d", code, ExitChecksFailed)
	}
	wantLines(t, out, `FAIL\s+hetzner token\s+.*does not accept HCLOUD_TOKEN`)
	all += out + errs
	for _, s := range []string{"cli-doctor-token", cfg.AccessKeyID, cfg.SecretAccessKey.Reveal()} {
		if strings.Contains(all, s) {
			t.Errorf("the output holds a secret:\n%s", all)
		}
	}
}

// TestDoctorCommandBadConfig: a config file that cannot be read is the
// one FAIL line.
func TestDoctorCommandBadConfig(t *testing.T) {
	clearSortieEnv(t)
	p := filepath.Join(t.TempDir(), "sortie.yaml")
	if err := os.WriteFile(p, []byte("provder: hetzner\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := doctor(t, "--config", p)
	if code != ExitChecksFailed {
		t.Errorf("exit %d, want %d", code, ExitChecksFailed)
	}
	wantLines(t, out, `FAIL\s+config\s+config .*provder`)
}

// TestRunStoreFailurePointsToDoctor: a run that the store refuses (here:
// a bucket that does not exist) exits 125 and points to `coordinator
// doctor`, which says what is wrong; the secret never shows.
func TestRunStoreFailurePointsToDoctor(t *testing.T) {
	clearSortieEnv(t)
	cfg := testenv.MinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", cfg.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", cfg.SecretAccessKey.Reveal())
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"run", "--state-dir", t.TempDir(), "--bucket", "no-such-bucket-" + strings.ToLower(t.Name()[:8]),
		"--endpoint", cfg.Endpoint, "--path-style", "--supervisor", testenv.SupervisorBinary(t), "--outbox", t.TempDir(), "--image", "x"}, &out, &errb, "test")
	if code != ExitSortie || !strings.Contains(errb.String(), "coordinator doctor") {
		t.Errorf("exit %d, stderr:\n%s\nwant %d and a pointer to coordinator doctor", code, errb.String(), ExitSortie)
	}
	if strings.Contains(out.String()+errb.String(), cfg.SecretAccessKey.Reveal()) {
		t.Error("the secret key was printed")
	}
}
