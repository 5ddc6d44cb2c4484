package supervisor

import (
	"context"
	"fmt"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

// openS3 opens the store the bundle describes.
func openS3(_ context.Context, a protocol.StoreAccess) (protocol.Store, error) {
	if a.Mode != protocol.AccessCredentials && a.Mode != "" {
		return nil, fmt.Errorf("store access mode %q is not supported by this supervisor", a.Mode)
	}
	return store.New(store.FromAccess(a))
}
