package protocol_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// TestRoundTripMinIO writes every message type through a real S3 server
// (MinIO) at its protocol key and reads it back unchanged.
func TestRoundTripMinIO(t *testing.T) {
	s3, err := store.New(testenv.MinIO(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	keys := protocol.NewRunKeys("rt", "01m8ydqp90sbasawf1jke8nmjw")
	keyOf := map[string]string{
		"spec": keys.Spec(), "boot": keys.Root() + "boot.json", "bootstrap": keys.Root() + "bootstrap.json",
		"hello": keys.Hello(), "status": keys.Status(), "result": keys.Result(),
		"event-phase": keys.Event(1), "event-log": keys.Event(2), "event-outbox": keys.Event(3),
		"event-message": keys.Event(4), "event-notice": keys.Event(5),
		"message-follow-up": keys.Inbox(1), "message-cancel": keys.Inbox(2),
		"message-refill": keys.Inbox(3), "message-refill-sts": keys.Inbox(4),
		"bootstrap-registry": keys.Root() + "bootstrap-registry.json",
	}
	for name, v := range messages() {
		t.Run(name, func(t *testing.T) {
			key, ok := keyOf[name]
			if !ok {
				t.Fatalf("no key for %s", name)
			}
			if err := protocol.PutJSON(ctx, s3, key, v); err != nil {
				t.Fatal(err)
			}
			back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := protocol.GetJSON(ctx, s3, key, back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(v, back); diff != "" {
				t.Errorf("round trip through MinIO differs (-want +got):\n%s", diff)
			}
		})
	}
	// A missing key is ErrNotFound; a message of another version is a
	// VersionError, never a half-read value.
	var st protocol.Status
	if err := protocol.GetJSON(ctx, s3, keys.Event(99), &st); !errors.Is(err, protocol.ErrNotFound) {
		t.Errorf("GetJSON(missing) = %v, want ErrNotFound", err)
	}
	if err := protocol.PutJSON(ctx, s3, keys.Status(), map[string]any{"v": 2, "phase": "future"}); err != nil {
		t.Fatal(err)
	}
	var ve *protocol.VersionError
	if err := protocol.GetJSON(ctx, s3, keys.Status(), &st); !errors.As(err, &ve) || ve.Got != 2 {
		t.Errorf("GetJSON(v2) = %v, want a VersionError for version 2", err)
	}
}
