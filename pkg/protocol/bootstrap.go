package protocol

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Secret is a string that never prints: String, GoString, fmt verbs and slog
// all show "[redacted]". JSON keeps the value, because secrets travel only
// inside the sealed bootstrap bundle.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// Self-destruct modes.
const (
	// SelfDestructPoweroff wipes the workload and powers the VM off; the
	// coordinator or reaper deletes the stopped server.
	SelfDestructPoweroff = "poweroff"
	// SelfDestructExit ends the supervisor process; used by the local
	// provider, whose "VM" is that process.
	SelfDestructExit = "exit"
	// SelfDestructDelete deletes the VM's own server through the cloud
	// API, with a token carried only in the sealed bundle (SelfDelete);
	// when that fails the VM powers off as in SelfDestructPoweroff.
	SelfDestructDelete = "delete"
)

// SelfDelete is what the delete self-destruct mode needs: a provider API
// and a token that can delete the VM's server.
type SelfDelete struct {
	// Provider is the cloud API's kind: "hetzner".
	Provider string `json:"provider"`
	// Endpoint is the API's base URL, such as https://api.hetzner.cloud/v1.
	Endpoint string `json:"endpoint"`
	// Token is the API token. Hetzner tokens are project-wide: see
	// docs/security.md.
	Token Secret `json:"token"`
	// Server is the name of the VM's own server.
	Server string `json:"server"`
}

// Boot is what cloud-init hands the supervisor, written by the user-data to
// a file on the VM. It carries no long-lived secret: only a presigned URL of
// the sealed bundle, valid for the boot timeout, and that bundle's one-time
// key, worthless once the bundle is deleted after the hello.
type Boot struct {
	V     int    `json:"v"`
	RunID string `json:"run_id"`
	// BootstrapURL is a presigned GET of the sealed bundle.
	BootstrapURL string `json:"bootstrap_url"`
	// BootstrapKey is the bundle's AES-256-GCM key, base64 (std encoding).
	BootstrapKey []byte `json:"bootstrap_key"`
	// Deadline is the VM's hard deadline.
	Deadline     time.Time `json:"deadline"`
	SelfDestruct string    `json:"self_destruct"`
}

// Access modes of StoreAccess.
const (
	// AccessCredentials: S3 credentials (scoped or not) for the run's prefix.
	AccessCredentials = "credentials"
	// AccessPresigned: a book of presigned URLs for exactly the run's keys,
	// refilled through the inbox; no credentials at all. Works on every S3
	// provider.
	AccessPresigned = "presigned"
	// AccessSTS: temporary S3 credentials from STS AssumeRole, narrowed by
	// a session policy to the run's prefix and a time window, renewed
	// through the inbox (AWS S3, MinIO).
	AccessSTS = "sts"
)

// SessionCredentials are temporary S3 credentials of the sts access mode.
type SessionCredentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey Secret `json:"secret_access_key"`
	SessionToken    Secret `json:"session_token"`
	// Expires is when they stop working (the session policy's end).
	Expires time.Time `json:"expires"`
}

// URLBook holds presigned URLs for the objects of one run, by name
// relative to the run's root ("status.json", "events/0000000001.json").
// A refill replaces the whole book.
type URLBook struct {
	// Expires is when the URLs stop working.
	Expires time.Time         `json:"expires"`
	Get     map[string]string `json:"get"`
	Put     map[string]string `json:"put"`
}

// StoreAccess is how the VM reaches the store.
type StoreAccess struct {
	Mode            string    `json:"mode"`
	Endpoint        string    `json:"endpoint"`
	Region          string    `json:"region"`
	Bucket          string    `json:"bucket"`
	Prefix          string    `json:"prefix"`
	PathStyle       bool      `json:"path_style"`
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey Secret    `json:"secret_access_key"`
	SessionToken    Secret    `json:"session_token,omitempty"`
	Expires         time.Time `json:"expires,omitzero"`
	// Book is the URL book of the presigned mode.
	Book *URLBook `json:"book,omitempty"`
}

// RegistryAuth are credentials for a container registry.
type RegistryAuth struct {
	// Server is the registry's host, with its port if it has one, exactly
	// as image references name it: "ghcr.io", "127.0.0.1:5000", and
	// "docker.io" for Docker Hub.
	Server   string `json:"server"`
	Username string `json:"username"`
	// Password is the password or access token.
	Password Secret `json:"password"`
}

// Bootstrap is the sealed bundle's content.
type Bootstrap struct {
	V     int         `json:"v"`
	RunID string      `json:"run_id"`
	Store StoreAccess `json:"store"`
	// Secrets are environment variables for the container that must not
	// sit in the store in clear: they travel only in this sealed bundle.
	Secrets map[string]Secret `json:"secrets,omitempty"`
	// Registry are credentials for pulling the image, which the supervisor
	// sends only to that registry. Nil: pulls are anonymous.
	Registry *RegistryAuth `json:"registry,omitempty"`
	// SelfDelete is set in the delete self-destruct mode.
	SelfDelete *SelfDelete `json:"self_delete,omitempty"`
}

// BootstrapKeySize is the size of a bundle key: AES-256.
const BootstrapKeySize = 32

var sealMagic = []byte("SRTB1")

// ErrSealed means a sealed bundle could not be opened: wrong key, wrong run,
// or tampered bytes.
var ErrSealed = errors.New("protocol: sealed bundle cannot be opened (wrong key, wrong run or tampered)")

// NewBootstrapKey returns a fresh random bundle key.
func NewBootstrapKey() ([]byte, error) {
	k := make([]byte, BootstrapKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("bootstrap key: %w", err)
	}
	return k, nil
}

// Seal encrypts b with AES-256-GCM under key. The run ID is authenticated as
// additional data, so a bundle cannot be replayed into another run. Layout:
// "SRTB1" | 12-byte nonce | ciphertext+tag.
func Seal(key []byte, b *Bootstrap) ([]byte, error) {
	plain, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{}, sealMagic...)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, []byte(b.RunID)), nil
}

// Open decrypts a bundle sealed by Seal for runID.
func Open(key []byte, runID string, sealed []byte) (*Bootstrap, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	n := len(sealMagic) + aead.NonceSize()
	if len(sealed) < n+aead.Overhead() || string(sealed[:len(sealMagic)]) != string(sealMagic) {
		return nil, ErrSealed
	}
	plain, err := aead.Open(nil, sealed[len(sealMagic):n], sealed[n:], []byte(runID))
	if err != nil {
		return nil, ErrSealed
	}
	var b Bootstrap
	if err := json.Unmarshal(plain, &b); err != nil {
		return nil, fmt.Errorf("bootstrap bundle: %w", err)
	}
	if err := CheckVersion(b.V); err != nil {
		return nil, err
	}
	return &b, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != BootstrapKeySize {
		return nil, fmt.Errorf("bootstrap key must be %d bytes, got %d", BootstrapKeySize, len(key))
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}
