// Package hetzner is the Hetzner Cloud provider, on hcloud-go: one server
// per run, named after the run and labelled with owner, run and expiry, so
// that a retried create never makes a second server and any coordinator can
// find and reap what it owns. Creates fall back through server types, then
// locations, with a bounded number of tries; every request of a coordinator
// shares one rate-limit budget; a successful run costs two API requests,
// the create and the delete.
package hetzner
