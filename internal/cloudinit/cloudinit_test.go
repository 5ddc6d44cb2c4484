package cloudinit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/sortie/sortie/internal/testenv"
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
	for _, want := range []string{
		"shutdown -P", "sha256sum -c",
		SupervisorPath + " service install --boot " + BootPath + " && " + SupervisorPath + " service start",
	} {
		if !bytes.Contains(ud, []byte(want)) {
			t.Errorf("user-data lacks %q", want)
		}
	}
	for _, unwanted := range []string{"systemd-run", "packages:", "package_update:"} {
		if bytes.Contains(ud, []byte(unwanted)) {
			t.Errorf("user-data has %q", unwanted)
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

// TestRenderInstallDocker: with InstallDocker, cloud-init updates the
// package lists and installs docker.io; Parse reads the flag back.
func TestRenderInstallDocker(t *testing.T) {
	p := params()
	p.InstallDocker = true
	ud, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	var cc struct {
		PackageUpdate bool     `yaml:"package_update"`
		Packages      []string `yaml:"packages"`
	}
	if err := yaml.Unmarshal(ud, &cc); err != nil {
		t.Fatal(err)
	}
	if !cc.PackageUpdate || !cmp.Equal(cc.Packages, []string{"docker.io"}) {
		t.Errorf("package_update = %v, packages = %q; want true, [docker.io]\n%s", cc.PackageUpdate, cc.Packages, ud)
	}
	got, err := Parse(ud)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&p, got); diff != "" {
		t.Errorf("Parse(Render(p)) differs (-want +got):\n%s", diff)
	}
}

// TestRenderPassesCloudInitSchema checks the user-data with cloud-init's
// own validator, `cloud-init schema -c FILE`. (Its schema allows keys it
// does not know, so it does not catch a misspelt top-level key.)
func TestRenderPassesCloudInitSchema(t *testing.T) {
	ci := testenv.Tool(t, "cloud-init", "cloud-init")
	for _, docker := range []bool{false, true} {
		t.Run(fmt.Sprintf("InstallDocker=%v", docker), func(t *testing.T) {
			t.Parallel()
			p := params()
			p.InstallDocker = docker
			ud, err := Render(p)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "user-data")
			if err := os.WriteFile(path, ud, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(t.Context(), ci, "schema", "-c", path).CombinedOutput()
			bad := err != nil
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "Invalid") || strings.Contains(line, "Error") {
					bad = true
				}
			}
			if bad {
				t.Errorf("cloud-init schema -c %s: %v\n%s\nuser-data:\n%s", path, err, out, ud)
			}
		})
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
