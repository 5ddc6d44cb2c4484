package supervisor

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/sortie/sortie/pkg/protocol"
)

// pullAuth returns the credentials to pull image with: nil when the bundle
// has none, else the bundle's, but only when they are for the image's own
// registry. The bundle is authenticated and the spec is not (whoever holds
// the bucket can rewrite it), so a spec naming an image on another registry
// must not receive them: that is an error, not an anonymous pull.
func pullAuth(image string, a *protocol.RegistryAuth) (*protocol.RegistryAuth, error) {
	if a == nil {
		return nil, nil
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, fmt.Errorf("image %q is not a valid image reference: %w", image, err)
	}
	if d := reference.Domain(named); d != a.Server {
		return nil, fmt.Errorf("image %q is on registry %q, but the registry credentials are for %q: they are sent to no other registry", image, d, a.Server)
	}
	return a, nil
}

// redactError hides secret in err's text, should an engine or a registry
// ever repeat it; errors.Is and errors.As still see err.
func redactError(err error, secret protocol.Secret) error {
	if secret == "" || !strings.Contains(err.Error(), secret.Reveal()) {
		return err
	}
	return &redactedError{err: err, text: strings.ReplaceAll(err.Error(), secret.Reveal(), secret.String())}
}

type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }
