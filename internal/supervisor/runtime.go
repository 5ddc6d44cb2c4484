package supervisor

import (
	"context"
	"io"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Mount is a bind mount of a host directory into the container.
type Mount struct {
	Source   string // absolute host path
	Target   string // absolute container path
	ReadOnly bool
}

// ContainerConfig is what the supervisor asks the runtime to create.
type ContainerConfig struct {
	Name       string
	Image      string
	Entrypoint []string // nil: the image's
	Cmd        []string // nil: the image's
	Env        []string // NAME=value
	WorkDir    string
	User       string // "": the image's
	Mounts     []Mount
	Limits     protocol.Limits
	Labels     map[string]string
	// CapAdd lists capabilities kept; all others are dropped.
	CapAdd         []string
	ReadOnlyRootfs bool
}

// ExitStatus is how a container ended.
type ExitStatus struct {
	Code      int
	OOMKilled bool
}

// Runtime is the container engine as the supervisor needs it. The Docker
// implementation talks to the Docker Engine API; tests use the same one
// against a real engine.
type Runtime interface {
	// ImageExists reports whether ref is present locally.
	ImageExists(ctx context.Context, ref string) (bool, error)
	// Pull pulls ref from its registry, with auth's credentials when auth
	// is not nil, else anonymously. Its error never holds the password.
	Pull(ctx context.Context, ref string, auth *protocol.RegistryAuth) error
	// Create creates (does not start) a container and returns its ID.
	Create(ctx context.Context, cfg ContainerConfig) (string, error)
	// Attach streams the container's stdout and stderr, demultiplexed, until
	// the container exits or ctx ends. Call it before Start so nothing is
	// missed; it returns once the attachment is established and streams in
	// the background; the returned channel yields the copy's end (nil error
	// at a normal EOF) and is then closed.
	Attach(ctx context.Context, id string, stdout, stderr io.Writer) (<-chan error, error)
	// Start starts a created container.
	Start(ctx context.Context, id string) error
	// Wait blocks until the container is no longer running.
	Wait(ctx context.Context, id string) (ExitStatus, error)
	// Stop sends SIGTERM, waits up to grace, then kills.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove force-removes the container and its anonymous volumes.
	Remove(ctx context.Context, id string) error
}
