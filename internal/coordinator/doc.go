// Package coordinator is the host side of Sortie: it starts a run (writes
// the spec, workspace, supervisor binary and sealed bootstrap bundle to the
// store, renders the user-data, asks a provider for a VM), follows it by
// polling the status object and fetching only new events, saves outbox
// files, sends inbox messages (follow-ups, cancel, URL refills), makes sure
// the VM is deleted, and reaps what any earlier coordinator of the same
// owner left behind. Providers (local, hetzner) live in subpackages.
package coordinator
