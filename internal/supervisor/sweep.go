package supervisor

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"
)

// runLabel marks every container of a run.
const runLabel = "dev.sortie.run"

// Sweep removes every container of run runID from the local Docker engine.
// The local provider calls it when it deletes a "VM", as deleting a real VM
// takes its containers with it.
func Sweep(ctx context.Context, runID string) error {
	d, err := NewDocker(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	list, err := d.c.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", runLabel+"="+runID),
	})
	if err != nil {
		return fmt.Errorf("list containers of run %s: %w", runID, err)
	}
	var errs []error
	for _, c := range list.Items {
		errs = append(errs, d.Remove(ctx, c.ID))
	}
	return errors.Join(errs...)
}
