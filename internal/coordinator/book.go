package coordinator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Store access modes for the VMs (Config.Access).
const (
	// AccessPresigned gives the VM a book of presigned URLs for exactly its
	// run's keys, refilled through the inbox while the run lives: no
	// credentials leave the host. The default; works on every S3 provider.
	AccessPresigned = protocol.AccessPresigned
	// AccessCredentials gives the VM the store credentials of VMAccess.
	AccessCredentials = protocol.AccessCredentials
	// AccessSTS gives the VM temporary credentials from STS AssumeRole,
	// narrowed by a session policy to the run's prefix and a window of
	// AccessTTL, renewed through the inbox while the run lives.
	AccessSTS = protocol.AccessSTS
)

// CredentialIssuer mints temporary store credentials that reach only the
// objects under prefix, and only until until (the sts access mode).
type CredentialIssuer interface {
	Issue(ctx context.Context, prefix string, until time.Time, session string) (*protocol.SessionCredentials, error)
}

// issue mints the run's temporary credentials for one AccessTTL.
func (c *Coordinator) issue(ctx context.Context, keys protocol.RunKeys, runID string) (*protocol.SessionCredentials, error) {
	creds, err := c.cfg.STS.Issue(ctx, keys.Root(), time.Now().Add(c.cfg.AccessTTL), "sortie-"+runID)
	if err != nil {
		return nil, fmt.Errorf("temporary store credentials for the VM: %w", err)
	}
	return creds, nil
}

// bookWindow is how far ahead a book reaches from a position.
type bookWindow struct {
	eventFrom, blobFrom, inboxFrom int64
}

// signBook presigns the URLs the VM needs from w on: the fixed objects,
// Events/Blobs/Inbox sequence numbers ahead, all valid for AccessTTL.
func (c *Coordinator) signBook(ctx context.Context, keys protocol.RunKeys, w bookWindow) (*protocol.URLBook, error) {
	ttl := c.cfg.AccessTTL
	b := &protocol.URLBook{Expires: time.Now().Add(ttl).UTC(), Get: map[string]string{}, Put: map[string]string{}}
	name := func(key string) string { return strings.TrimPrefix(key, keys.Root()) }
	get := func(key string) error {
		u, err := c.cfg.Store.PresignGet(ctx, key, ttl)
		b.Get[name(key)] = u
		return err
	}
	put := func(key string) error {
		u, err := c.cfg.Store.PresignPut(ctx, key, ttl)
		b.Put[name(key)] = u
		return err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range []string{keys.Spec(), keys.Workspace(), keys.Hello(), keys.Status()} {
		add(get(k))
	}
	for _, k := range []string{keys.Hello(), keys.Status(), keys.Result()} {
		add(put(k))
	}
	for i := range c.cfg.BookEvents {
		add(put(keys.Event(w.eventFrom + i)))
	}
	for i := range c.cfg.BookBlobs {
		add(put(keys.Blob(w.blobFrom + i)))
	}
	for i := range c.cfg.BookInbox {
		add(get(keys.Inbox(w.inboxFrom + i)))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("presign the run's URLs: %w", errs[0])
	}
	return b, nil
}

// maybeRefill renews the VM's store access through the inbox: a fresh book
// when its URLs run low or half their life has passed, fresh credentials at
// half their life. Nothing is renewed once the run is over, so the VM's
// access ends within one AccessTTL.
func (r *Run) maybeRefill(ctx context.Context, s *protocol.Status) {
	if r.creds != nil {
		r.maybeRenew(ctx)
		return
	}
	if r.book == nil {
		return
	}
	cfg := &r.c.cfg
	w := bookWindow{eventFrom: s.LastEvent + 1, blobFrom: max(s.BlobNext, 1), inboxFrom: max(s.InboxNext, 1)}
	low := w.eventFrom+cfg.BookEvents/2 > r.bookFrom.eventFrom+cfg.BookEvents ||
		w.blobFrom+cfg.BookBlobs/2 > r.bookFrom.blobFrom+cfg.BookBlobs
	r.msgMu.Lock()
	nextMsg := r.nextMsg
	r.msgMu.Unlock()
	// The refill itself takes an inbox slot, and the book must reach past
	// every message the host may send next.
	low = low || nextMsg+cfg.BookInbox/2 > r.bookFrom.inboxFrom+cfg.BookInbox
	aging := time.Until(r.book.Expires) < cfg.AccessTTL/2
	if !low && !aging {
		return
	}
	w.inboxFrom = max(w.inboxFrom, nextMsg)
	book, err := r.c.signBook(ctx, r.keys, w)
	if err != nil {
		r.log.Warn("refill presigned URLs", "err", err)
		return
	}
	if _, err := r.send(ctx, protocol.Message{Type: protocol.MessageRefill, Book: book}); err != nil {
		r.log.Warn("send presigned URL refill", "err", err)
		return
	}
	r.book, r.bookFrom = book, w
}

// maybeRenew sends the VM fresh temporary credentials once half the current
// ones' life has passed (sts mode).
func (r *Run) maybeRenew(ctx context.Context) {
	if time.Until(r.creds.Expires) >= r.c.cfg.AccessTTL/2 {
		return
	}
	creds, err := r.c.issue(ctx, r.keys, r.ID)
	if err != nil {
		r.log.Warn("renew the VM's store credentials", "err", err)
		return
	}
	if _, err := r.send(ctx, protocol.Message{Type: protocol.MessageRefill, Credentials: creds}); err != nil {
		r.log.Warn("send renewed store credentials", "err", err)
		return
	}
	r.creds = creds
}
