package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie/sortie/pkg/sortie"
)

// ExitChecksFailed is the exit code of `coordinator doctor` when a check
// failed.
const ExitChecksFailed = 1

func newDoctorCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the configuration, store, provider and Docker before a run, and say what is wrong",
		Long: `Doctor checks what a run would use, with the same config file, flags and
environment, and prints one line per check: ok, info, warn or FAIL, what it
means, and what to do. It checks the provider and the store access mode; that
the bucket takes a write, a read and a delete under <prefix>/doctor/ (deleted
again); this machine's clock against the store's; STS (scoped credentials in
the sts mode, otherwise only whether it is there); for Hetzner, that the token
is accepted and may write (by a request the API refuses, so nothing is
created) and that the server types, locations and image exist; for the local
provider, that a Docker engine answers; and the vm-supervisor binary.

It exits 0 when nothing failed, 1 otherwise. It never prints a secret.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks := doctorChecks(cmd.Context(), g)
			var err error
			if asJSON {
				err = printChecksJSON(g.stdout, checks)
			} else {
				err = printChecks(g.stdout, checks)
			}
			if err != nil {
				return &ExitError{Code: ExitSortie, Err: err}
			}
			if sortie.Failed(checks) {
				return &ExitError{Code: ExitChecksFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each check as a JSON line: name, status, detail")
	return cmd
}

// doctorChecks resolves the options as every command does and runs the
// checks. A config file that cannot be read is the one check.
func doctorChecks(ctx context.Context, g *globals) []sortie.Check {
	config := sortie.Check{Name: "config", Status: sortie.StatusInfo,
		Detail: "no config file (--config, SORTIE_CONFIG): flags, environment and defaults"}
	if g.config != "" {
		if _, err := sortie.LoadConfig(g.config); err != nil {
			return []sortie.Check{{Name: "config", Status: sortie.StatusFail, Detail: err.Error() + ": fix the file, or point --config (SORTIE_CONFIG) at another"}}
		}
		config = sortie.Check{Name: "config", Status: sortie.StatusOK,
			Detail: g.config + " read; flags and the environment override it"}
	}
	// Its refusals (a bucket without keys, hetzner without a token) are
	// checks of Doctor's too, said there with the rest.
	o, _ := g.options()
	return append([]sortie.Check{config}, sortie.Doctor(ctx, o)...)
}

func printChecks(w io.Writer, checks []sortie.Check) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fails, warns := 0, 0
	for _, c := range checks {
		// One line each: an error from a library may hold line breaks.
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, strings.Join(strings.Fields(c.Detail), " "))
		switch c.Status {
		case sortie.StatusFail:
			fails++
		case sortie.StatusWarn:
			warns++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var err error
	switch {
	case fails > 0:
		_, err = fmt.Fprintf(w, "\n%s, %s: fix the FAIL lines before a run.\n", count(fails, "check failed", "checks failed"), count(warns, "warning", "warnings"))
	case warns > 0:
		_, err = fmt.Fprintf(w, "\nnothing failed, %s: a run should work; look at the warn lines.\n", count(warns, "warning", "warnings"))
	default:
		_, err = fmt.Fprintln(w, "\nnothing failed: ready to run.")
	}
	return err
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func printChecksJSON(w io.Writer, checks []sortie.Check) error {
	enc := json.NewEncoder(w)
	for _, c := range checks {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	return nil
}
