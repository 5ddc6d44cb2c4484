// Command vm-supervisor runs one Sortie run on a VM: it is installed and
// started by the run's cloud-init user-data. See internal/supervisor.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sortie/sortie/internal/supervisor"
)

// exitNoRestart tells the service manager not to restart the supervisor
// (the unit's RestartPreventExitStatus): a restart cannot mend the error.
const exitNoRestart = 3

// version is set with -ldflags "-X main.version=...".
var version = "dev"

const usage = `vm-supervisor runs one Sortie run on a VM.

Usage:
  vm-supervisor run --boot FILE [--work-dir DIR] [--self-destruct poweroff|exit]
  vm-supervisor sweep --run RUN-ID
  vm-supervisor version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		fs := flag.NewFlagSet("run", flag.ExitOnError)
		cfg := supervisor.Config{Logger: log, Version: version}
		fs.StringVar(&cfg.BootPath, "boot", "/etc/sortie/boot.json", "boot file written by cloud-init")
		fs.StringVar(&cfg.WorkDir, "work-dir", "/var/lib/sortie", "directory for the run's workspace, inbox and outbox")
		fs.StringVar(&cfg.SelfDestruct, "self-destruct", "", "override the boot file's self-destruct mode (poweroff or exit)")
		_ = fs.Parse(os.Args[2:])
		err = supervisor.Run(ctx, cfg)
	case "sweep":
		fs := flag.NewFlagSet("sweep", flag.ExitOnError)
		runID := fs.String("run", "", "run ID whose containers to remove")
		_ = fs.Parse(os.Args[2:])
		if *runID == "" {
			err = errors.New("sweep: --run is required")
			break
		}
		err = supervisor.Sweep(ctx, *runID)
	case "version":
		fmt.Println(version)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm-supervisor:", err)
		if errors.Is(err, supervisor.ErrBoot) || errors.Is(err, supervisor.ErrBundleGone) {
			os.Exit(exitNoRestart)
		}
		os.Exit(1)
	}
}
