// Package supervisor is the vm-supervisor: on the VM it opens the sealed
// bootstrap bundle, claims the run with a hello, runs the agent container
// through the Docker Engine API, streams heartbeats, log chunks, outbox files
// and events to the store, delivers inbox messages into the container,
// enforces the container timeout and the VM deadline on its own clock, writes
// the result last and self-destructs.
package supervisor
