package cloudinit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie/sortie/pkg/protocol"
)

func params() Params {
	return Params{
		SupervisorURL:    "http://127.0.0.1:9000/sortie/bin/vm-supervisor/amd64/abc?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef",
		SupervisorSHA256: strings.Repeat("ab", 32),
		Boot: protocol.Boot{
			V: protocol.Version, RunID: "01m8ydqp90sbasawf1jke8nmjw",
			BootstrapURL: "http://127.0.0.1:9000/sortie/runs/01m8ydqp90sbasawf1jke8nmjw/bootstrap.sealed?X-Amz-Signature=1",
			BootstrapKey: bytes.Repeat([]byte{1}, 32),
			Deadline:     time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC), SelfDestruct: protocol.SelfDestructPoweroff,
		},
	}
}

func TestRenderParseRoundTrip(t *testing.T) {
	p := params()
	ud, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ud, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config:\n%s", ud)
	}
	for _, want := range []string{"shutdown -P", "sha256sum -c", "systemd-run --unit=sortie-supervisor", BootPath} {
		if !bytes.Contains(ud, []byte(want)) {
			t.Errorf("user-data lacks %q", want)
		}
	}
	got, err := Parse(ud)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&p, got); diff != "" {
		t.Errorf("Parse(Render(p)) differs (-want +got):\n%s", diff)
	}
}

func TestRenderRefusesBadParams(t *testing.T) {
	tests := map[string]func(*Params){
		"no URL":       func(p *Params) { p.SupervisorURL = "" },
		"quote in URL": func(p *Params) { p.SupervisorURL += "'; rm -rf /" },
		"short SHA":    func(p *Params) { p.SupervisorSHA256 = "abc" },
		"no run":       func(p *Params) { p.Boot.RunID = "" },
		"short key":    func(p *Params) { p.Boot.BootstrapKey = []byte{1} },
		"no deadline":  func(p *Params) { p.Boot.Deadline = time.Time{} },
		"over 32 KiB":  func(p *Params) { p.Boot.BootstrapURL = "http://x/" + strings.Repeat("a", MaxUserData) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			p := params()
			mutate(&p)
			if _, err := Render(p); err == nil {
				t.Fatal("Render succeeded, want an error")
			}
		})
	}
}

func TestParseRejectsOtherDocuments(t *testing.T) {
	for _, in := range []string{"", "#!/bin/sh\necho hi\n", "#cloud-config\nruncmd: [[echo]]\n"} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", in)
		}
	}
}
