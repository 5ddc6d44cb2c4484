// Package agent is the container side of the Sortie agent contract: the
// pieces of sortie-agent, the entrypoint of the reference agent image. Run
// starts the agent's command as PID 1 should (its own process group, signals
// forwarded to that group, orphans reaped, the child's exit code passed on);
// Inbox waits for the follow-up messages the supervisor drops into
// /sortie/inbox; Outbox puts files into /sortie/outbox atomically so the
// supervisor never picks up half a file. The contract itself is written down
// in docs/agent-contract.md.
package agent
