package agent

import "os"

// Paths inside the container (contract version 1) and the environment
// variables that carry them. The supervisor sets the variables; the
// defaults apply when it did not (for example under a plain docker run).
const (
	EnvRunID     = "SORTIE_RUN_ID"
	EnvWorkspace = "SORTIE_WORKSPACE"
	EnvInput     = "SORTIE_INPUT"
	EnvInbox     = "SORTIE_INBOX"
	EnvOutbox    = "SORTIE_OUTBOX"

	DefaultWorkspace = "/workspace"
	DefaultInput     = "/sortie/input.json"
	DefaultInbox     = "/sortie/inbox"
	DefaultOutbox    = "/sortie/outbox"
)

// Dir returns the value of the environment variable env, or def when it is
// unset or empty.
func Dir(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}
