package coordinator

import (
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/sortie/sortie/pkg/protocol"
)

// checkRegistry says what is wrong with registry credentials for image.
// The password never appears in what it says.
func checkRegistry(a *protocol.RegistryAuth, image string) []error {
	var errs []error
	switch {
	case a.Server == "":
		errs = append(errs, errors.New("registry credentials need the registry server: name the image's registry, such as ghcr.io or 127.0.0.1:5000"))
	case strings.Contains(a.Server, "://") || strings.ContainsAny(a.Server, "/@ \t"):
		errs = append(errs, fmt.Errorf("registry server %q must be a host with an optional port, as image references name it (such as ghcr.io or 127.0.0.1:5000), with no scheme or path", a.Server))
	}
	if a.Username == "" {
		errs = append(errs, errors.New("registry credentials need a username"))
	}
	if a.Password == "" {
		errs = append(errs, errors.New("registry credentials need a password or access token"))
	}
	if a.Server == "" || strings.TrimSpace(image) == "" {
		return errs
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return append(errs, fmt.Errorf("image %q is not a valid image reference: %w", image, err))
	}
	if domain := reference.Domain(named); domain != a.Server {
		errs = append(errs, fmt.Errorf("registry server %q is not the registry of image %q, which is %q: the VM sends the credentials only to the image's registry, so name the image with its registry (%s/%s) or set the registry server to %q",
			a.Server, image, domain, a.Server, reference.Path(named), domain))
	}
	return errs
}
