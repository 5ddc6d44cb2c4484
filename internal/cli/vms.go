package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sortie/sortie/pkg/sortie"
)

// pricer is a provider that knows its live prices.
type pricer interface {
	HourlyPrices(ctx context.Context) (map[string]float64, string, error)
}

func newLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List this owner's VMs: run, age, state, expiry and estimated cost",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := g.options()
			if err != nil {
				return &ExitError{Code: ExitSortie, Err: err}
			}
			o.ReapInterval = -1 // ls only looks
			cl, err := openWith(cmd.Context(), o)
			if err != nil {
				return &ExitError{Code: ExitSortie, Err: err}
			}
			defer cl.Close()
			now := time.Now()
			states, err := cl.ListVMs(cmd.Context(), now)
			if err != nil {
				return &ExitError{Code: ExitSortie, Err: err}
			}
			prices, currency := map[string]float64{}, ""
			if p, ok := cl.Provider().(pricer); ok {
				if prices, currency, err = p.HourlyPrices(cmd.Context()); err != nil {
					fmt.Fprintln(g.stderr, "sortie: no live prices:", err)
				}
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tRUN\tAGE\tSERVER\tRUN STATE\tEXPIRES IN\tCOST (est.)\tREAP")
			for _, st := range states {
				age := now.Sub(st.VM.Created).Round(time.Second)
				cost := "?"
				if h, ok := prices[st.VM.Type+"/"+st.VM.Location]; ok {
					// Hetzner bills started hours.
					cost = fmt.Sprintf("%.4f %s", h*float64(int(age.Hours())+1), currency)
				}
				exp := "?"
				if !st.Expires.IsZero() {
					exp = st.Expires.Sub(now).Round(time.Second).String()
				}
				reap := st.Reap
				if reap == "" {
					reap = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.VM.Name, st.VM.RunID, age,
					st.VM.Status, st.Run, exp, cost, reap)
			}
			return w.Flush()
		},
	}
}

func newReapCmd(g *globals) *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "reap",
		Short: "Delete this owner's VMs that are expired, finished, or never said hello (for cron)",
		Long: `Reap deletes, for this owner only, the VMs that are past their expiry, whose run
has a result, or that never said hello within the boot timeout. It never
touches a VM without this coordinator's owner label. Run it from cron as a
last line of defence; a running coordinator also reaps every few minutes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := g.options()
			if err != nil {
				return &ExitError{Code: ExitSortie, Err: err}
			}
			o.ReapInterval = -1
			cl, err := openWith(cmd.Context(), o)
			if err != nil {
				return &ExitError{Code: ExitSortie, Err: err}
			}
			defer cl.Close()
			if dry {
				states, err := cl.ListVMs(cmd.Context(), time.Now())
				if err != nil {
					return &ExitError{Code: ExitSortie, Err: err}
				}
				for _, st := range states {
					if st.Reap != "" {
						fmt.Fprintf(g.stdout, "would delete %s (run %s): %s\n", st.VM.Name, st.VM.RunID, st.Reap)
					}
				}
				return nil
			}
			reaped, err := cl.Reap(cmd.Context(), time.Now())
			for _, r := range reaped {
				status := "deleted"
				if r.Err != nil {
					status = "NOT deleted: " + r.Err.Error()
				}
				fmt.Fprintf(g.stdout, "%s (run %s, %s): %s\n", r.VM.Name, r.VM.RunID, r.Reap, status)
			}
			if err != nil {
				return &ExitError{Code: ExitSortie, Err: err}
			}
			if len(reaped) == 0 {
				fmt.Fprintln(g.stdout, "nothing to reap")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only say what would be deleted")
	return cmd
}

func openWith(ctx context.Context, o sortie.Options) (*sortie.Client, error) {
	return sortie.Open(ctx, o)
}
