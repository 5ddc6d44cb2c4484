package store_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sortie/sortie/internal/store"
)

func TestEmbeddedConfig(t *testing.T) {
	cfg := startEmbedded(t).Config()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Config().Validate() = %v", err)
	}
	if cfg.Bucket != store.EmbeddedBucket || !cfg.PathStyle || !strings.HasPrefix(cfg.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Config() = %+v, want bucket %q, path style, endpoint on 127.0.0.1", cfg, store.EmbeddedBucket)
	}
}

func TestEmbeddedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e, err := store.StartEmbedded(testContext(t), t.TempDir(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got, want := e.Config().Endpoint, "http://"+addr; got != want {
		t.Errorf("Endpoint = %q, want %q", got, want)
	}
}

func TestEmbeddedRefuses(t *testing.T) {
	tests := []struct {
		name, dir, addr, want string
	}{
		{"all interfaces", "", ":0", "loopback"},
		{"any address", "", "0.0.0.0:0", "loopback"},
		{"public address", "", "192.0.2.1:9000", "loopback"},
		{"no port", "", "127.0.0.1", "listen address"},
		{"no directory", "-", "", "state directory is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.dir == "-" {
				dir = ""
			}
			e, err := store.StartEmbedded(testContext(t), dir, tt.addr)
			if err == nil {
				e.Close()
				t.Fatalf("StartEmbedded(%q) succeeded, want an error", tt.addr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("StartEmbedded(%q) = %v, want it to mention %q", tt.addr, err, tt.want)
			}
		})
	}
}

func TestEmbeddedKeepsDataAcrossRestarts(t *testing.T) {
	ctx, dir := testContext(t), t.TempDir()
	e, err := store.StartEmbedded(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := newS3(t, e.Config()).Put(ctx, "runs/r1/result.json", strings.NewReader(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(left) != 0 {
		t.Errorf("temporary files left after the puts: %v", left)
	}

	e, err = store.StartEmbedded(ctx, dir, "")
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer e.Close()
	got, err := newS3(t, e.Config()).Get(ctx, "runs/r1/result.json")
	if err != nil || string(got) != `{"v":1}` {
		t.Errorf("Get after restart = %q, %v; want %q", got, err, `{"v":1}`)
	}
}
