package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/cloudinit"
	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/pkg/protocol"
)

func userData(t *testing.T, url, sha string) []byte {
	t.Helper()
	ud, err := cloudinit.Render(cloudinit.Params{
		SupervisorURL: url, SupervisorSHA256: sha,
		Boot: protocol.Boot{V: protocol.Version, RunID: "01r", BootstrapURL: "http://127.0.0.1:1/b",
			BootstrapKey: bytes.Repeat([]byte{1}, 32), Deadline: time.Now().Add(time.Minute), SelfDestruct: protocol.SelfDestructExit},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ud
}

// TestCreateChecksSupervisorDigest: like cloud-init's sha256sum -c, a
// binary that does not match the user-data's digest is never started.
func TestCreateChecksSupervisorDigest(t *testing.T) {
	bin := []byte("#!/bin/sh\nexit 0\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(bin) }))
	defer srv.Close()
	p := &Provider{Dir: t.TempDir()}
	wrong := strings.Repeat("0", 64)
	_, err := p.Create(context.Background(), coordinator.CreateRequest{Name: "sortie-01r", RunID: "01r", UserData: userData(t, srv.URL+"/sup", wrong)})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("Create = %v, want a checksum mismatch", err)
	}
	if got := p.Running(); len(got) != 0 {
		t.Errorf("VMs running after a failed create: %v", got)
	}
	// The same name can be used again after a failure.
	sum := sha256.Sum256(bin)
	vm, err := p.Create(context.Background(), coordinator.CreateRequest{Name: "sortie-01r", RunID: "01r", UserData: userData(t, srv.URL+"/sup", hex.EncodeToString(sum[:]))})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !p.Gone(vm) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !p.Gone(vm) {
		t.Error("a VM whose process exited is not reported gone")
	}
}

func TestCreateRefusesBadUserData(t *testing.T) {
	p := &Provider{Dir: t.TempDir()}
	if _, err := p.Create(context.Background(), coordinator.CreateRequest{Name: "x", UserData: []byte("#!/bin/sh\n")}); err == nil {
		t.Error("Create accepted user-data that is not cloud-config")
	}
}
