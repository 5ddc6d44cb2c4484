// Package protocol is the versioned mailbox protocol between a Sortie
// coordinator (on the host) and a vm-supervisor (on the VM). It is the only
// contract between the two binaries: the key layout of a run in an object
// store, the JSON messages stored under those keys, the sealed bootstrap
// bundle and the version rules. It imports nothing else of Sortie, so hosts in
// other languages can implement it from this package and docs/protocol.md.
//
// The invariants: everything of a run lives under <prefix>/runs/<run-id>/;
// each key has exactly one writer (the host writes spec, workspace, bootstrap
// and inbox; the supervisor writes hello, status, events, blobs and result);
// every key the VM touches is computable, so the VM never lists; the status
// object names the newest event so the host never lists either; the result is
// written last and is the commit marker of a run.
package protocol
