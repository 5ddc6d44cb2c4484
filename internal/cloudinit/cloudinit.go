package cloudinit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sortie/sortie/pkg/protocol"
)

// MaxUserData is the largest user-data Hetzner Cloud accepts: 32 KiB.
const MaxUserData = 32 << 10

// DeadmanGrace is how long past the VM deadline the dead-man's switch
// powers the VM off: time for the supervisor, which acts at the deadline,
// to stop the container and write the result first.
const DeadmanGrace = 3 * time.Minute

// Paths on the VM.
const (
	BootPath       = "/etc/sortie/boot.json"
	InstallPath    = "/etc/sortie/install.sh"
	SupervisorPath = "/usr/local/bin/vm-supervisor"
)

// Params is everything the user-data carries. None of it is a long-lived
// secret: the URLs are presigned and short-lived, the bundle key is one-time.
type Params struct {
	// SupervisorURL is a presigned GET of the vm-supervisor binary.
	SupervisorURL string
	// SupervisorSHA256 is the binary's SHA-256, hex.
	SupervisorSHA256 string
	// Boot is written to BootPath for the supervisor.
	Boot protocol.Boot
	// InstallDocker makes cloud-init install Debian/Ubuntu's docker.io
	// package (after an apt-get update) before the install script runs, so
	// that a plain image works. Default false: the image has Docker.
	InstallDocker bool
}

// DockerPackage is the Debian/Ubuntu package InstallDocker installs.
const DockerPackage = "docker.io"

// Validate says what is wrong with p, all problems at once.
func (p *Params) Validate() error {
	var errs []error
	if u, err := url.Parse(p.SupervisorURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("supervisor URL must be an absolute http(s) URL"))
	}
	if strings.ContainsAny(p.SupervisorURL, "'\n\r") {
		errs = append(errs, errors.New("supervisor URL must not contain quotes or newlines"))
	}
	if b, err := hex.DecodeString(p.SupervisorSHA256); err != nil || len(b) != 32 {
		errs = append(errs, errors.New("supervisor SHA-256 must be 64 hex digits"))
	}
	if p.Boot.RunID == "" {
		errs = append(errs, errors.New("boot: run ID is empty"))
	}
	if p.Boot.BootstrapURL == "" {
		errs = append(errs, errors.New("boot: bootstrap URL is empty"))
	}
	if len(p.Boot.BootstrapKey) != protocol.BootstrapKeySize {
		errs = append(errs, fmt.Errorf("boot: bootstrap key must be %d bytes", protocol.BootstrapKeySize))
	}
	if p.Boot.Deadline.IsZero() {
		errs = append(errs, errors.New("boot: deadline is not set"))
	}
	return errors.Join(errs...)
}

type writeFile struct {
	Path        string `yaml:"path"`
	Permissions string `yaml:"permissions"`
	Owner       string `yaml:"owner"`
	Content     string `yaml:"content"`
}

// cloudConfig is the part of cloud-init's schema the user-data uses. The
// packages module runs in cloud-init's config stage, before runcmd (the
// final stage).
type cloudConfig struct {
	PackageUpdate bool        `yaml:"package_update,omitempty"`
	Packages      []string    `yaml:"packages,omitempty"`
	WriteFiles    []writeFile `yaml:"write_files"`
	RunCmd        [][]string  `yaml:"runcmd"`
}

// The install script: dead-man's switch first (so it is armed even when the
// download fails), then download, verify, and install and start the
// supervisor as the system service sortie-supervisor (the unit is
// supervisor.ServiceConfig's). The two variable lines are read back by Parse.
var installTmpl = template.Must(template.New("install").Parse(`#!/bin/sh
# Sortie VM bootstrap. Rendered per run; carries no secret.
set -eu
SUPERVISOR_URL='{{.URL}}'
SUPERVISOR_SHA256='{{.SHA}}'
DEADLINE={{.Deadline}}
now=$(date +%s)
mins=$(( (DEADLINE - now + 59) / 60 + {{.DeadmanGraceMin}} ))
[ "$mins" -lt 1 ] && mins=1
shutdown -P "+$mins" "sortie: VM deadline" || true
tmp="{{.Bin}}.download"
i=0
until curl -fsS --max-time 120 -o "$tmp" "$SUPERVISOR_URL"; do
  i=$((i + 1)); [ "$i" -ge 10 ] && { echo "sortie: supervisor download failed" >&2; poweroff; exit 1; }
  sleep 3
done
echo "$SUPERVISOR_SHA256  $tmp" | sha256sum -c - || { echo "sortie: supervisor checksum mismatch" >&2; poweroff; exit 1; }
chmod 0755 "$tmp"
mv "$tmp" "{{.Bin}}"
{{.Bin}} service install --boot {{.Boot}} && {{.Bin}} service start || { echo "sortie: supervisor service failed to start" >&2; poweroff; exit 1; }
`))

// Render returns the #cloud-config user-data for p, or an error when p is
// invalid or the result exceeds MaxUserData.
func Render(p Params) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("render user-data: %w", err)
	}
	boot, err := json.Marshal(p.Boot)
	if err != nil {
		return nil, fmt.Errorf("render user-data: %w", err)
	}
	var script bytes.Buffer
	err = installTmpl.Execute(&script, map[string]any{
		"URL": p.SupervisorURL, "SHA": p.SupervisorSHA256,
		"Deadline": p.Boot.Deadline.Unix(), "Bin": SupervisorPath, "Boot": BootPath,
		"DeadmanGraceMin": int(DeadmanGrace / time.Minute),
	})
	if err != nil {
		return nil, fmt.Errorf("render user-data: %w", err)
	}
	cc := cloudConfig{
		WriteFiles: []writeFile{
			{Path: BootPath, Permissions: "0600", Owner: "root:root", Content: string(boot) + "\n"},
			{Path: InstallPath, Permissions: "0700", Owner: "root:root", Content: script.String()},
		},
		RunCmd: [][]string{{"sh", InstallPath}},
	}
	if p.InstallDocker {
		cc.PackageUpdate = true
		cc.Packages = []string{DockerPackage}
	}
	body, err := yaml.Marshal(cc)
	if err != nil {
		return nil, fmt.Errorf("render user-data: %w", err)
	}
	out := append([]byte("#cloud-config\n"), body...)
	if len(out) > MaxUserData {
		return nil, fmt.Errorf("render user-data: %d bytes is over the %d-byte limit of Hetzner Cloud", len(out), MaxUserData)
	}
	return out, nil
}

// Parse reads user-data made by Render back into Params.
func Parse(userData []byte) (*Params, error) {
	if !bytes.HasPrefix(userData, []byte("#cloud-config\n")) {
		return nil, errors.New("parse user-data: not a #cloud-config document")
	}
	var cc cloudConfig
	if err := yaml.Unmarshal(userData, &cc); err != nil {
		return nil, fmt.Errorf("parse user-data: %w", err)
	}
	p := Params{InstallDocker: slices.Contains(cc.Packages, DockerPackage)}
	var haveBoot, haveScript bool
	for _, f := range cc.WriteFiles {
		switch f.Path {
		case BootPath:
			if err := protocol.Decode([]byte(f.Content), &p.Boot); err != nil {
				return nil, fmt.Errorf("parse user-data: boot file: %w", err)
			}
			haveBoot = true
		case InstallPath:
			for _, line := range strings.Split(f.Content, "\n") {
				if v, ok := shellVar(line, "SUPERVISOR_URL"); ok {
					p.SupervisorURL = v
				}
				if v, ok := shellVar(line, "SUPERVISOR_SHA256"); ok {
					p.SupervisorSHA256 = v
				}
			}
			haveScript = true
		}
	}
	if !haveBoot || !haveScript {
		return nil, fmt.Errorf("parse user-data: missing %s or %s", BootPath, InstallPath)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("parse user-data: %w", err)
	}
	return &p, nil
}

func shellVar(line, name string) (string, bool) {
	v, ok := strings.CutPrefix(line, name+"='")
	if !ok || !strings.HasSuffix(v, "'") {
		return "", false
	}
	return strings.TrimSuffix(v, "'"), true
}
