package hetzner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
)

// keyLabels mark the project SSH key.
var keyLabels = map[string]string{"managed-by": "sortie", "sortie-role": "project-key"}

// projectKey finds the project key by label, or creates it: one key for
// the whole project, never one per run.
func (p *Provider) projectKey(ctx context.Context) (*hcloud.SSHKey, error) {
	keys, err := p.client.SSHKey.AllWithOpts(ctx, hcloud.SSHKeyListOpts{
		ListOpts: hcloud.ListOpts{LabelSelector: "managed-by=sortie,sortie-role=project-key"},
	})
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		return keys[0], nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if p.cfg.SSHKeyDir != "" {
		block, err := ssh.MarshalPrivateKey(priv, "sortie project key")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(p.cfg.SSHKeyDir, 0o700); err != nil {
			return nil, err
		}
		path := filepath.Join(p.cfg.SSHKeyDir, "id_ed25519_"+p.cfg.SSHKeyName)
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, fmt.Errorf("save the private key: %w", err)
		}
	}
	key, _, err := p.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{
		Name: p.cfg.SSHKeyName, PublicKey: string(ssh.MarshalAuthorizedKey(sshPub)), Labels: keyLabels,
	})
	if hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		// Another coordinator created it meanwhile, or a key of that name
		// exists without our labels.
		keys, lerr := p.client.SSHKey.AllWithOpts(ctx, hcloud.SSHKeyListOpts{
			ListOpts: hcloud.ListOpts{LabelSelector: "managed-by=sortie,sortie-role=project-key"},
		})
		if lerr == nil && len(keys) > 0 {
			return keys[0], nil
		}
		return nil, fmt.Errorf("an SSH key named %q exists without Sortie's labels: choose another key name", p.cfg.SSHKeyName)
	}
	return key, err
}
