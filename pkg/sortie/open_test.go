package sortie_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/pkg/sortie"
)

// TestOpenRefusesBadOptions: settings no provider can run with are refused
// before anything starts, all named in one error.
func TestOpenRefusesBadOptions(t *testing.T) {
	_, err := sortie.Open(context.Background(), sortie.Options{
		StateDir: t.TempDir(), Provider: "bogus", Access: "telepathy", AccessTTL: -5 * time.Minute, BootTimeout: -time.Second,
		Hetzner: sortie.HetznerOptions{SelfDestruct: "explode"},
	})
	for _, want := range []string{`unknown provider "bogus"`, `unknown store access mode "telepathy"`, `unknown self-destruct mode "explode"`,
		"access_ttl must not be negative", "boot_timeout must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	if _, err := sortie.Open(context.Background(), sortie.Options{StateDir: t.TempDir(), Access: "sts",
		Store: sortie.StoreOptions{Bucket: "b", Endpoint: "https://s3.eu-central-1.amazonaws.com"}}); err == nil || !strings.Contains(err.Error(), "needs a role to assume") {
		t.Errorf("sts on AWS without a role: err = %v, want one asking for sts.role_arn", err)
	}
	if _, err := sortie.Open(context.Background(), sortie.Options{StateDir: t.TempDir(), AccessTTL: time.Second}); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a 1 s access_ttl: err = %v, want too short", err)
	}
}

// TestLoadConfigSaysWhatIsWrong: a config file's mistakes are named in the
// file's words (keys and values), with their lines, all at once.
func TestLoadConfigSaysWhatIsWrong(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sortie.yaml")
	if err := os.WriteFile(p, []byte("bogus_key: 1\nboot_timeout: soon\nstore: {path_style: maybe}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sortie.LoadConfig(p)
	for _, want := range []string{"line 1: unknown key bogus_key", `line 2: "soon" is not a duration`, `line 3: "maybe" is not true or false`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "sortie.Options") {
		t.Errorf("err = %v names a Go type", err)
	}
}
