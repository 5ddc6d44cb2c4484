// Package main is the vm-supervisor command. It runs one Sortie run on a VM: it is installed and
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
	"time"

	"github.com/sortie/sortie/internal/supervisor"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

const usage = `vm-supervisor runs one Sortie run on a VM.

Usage:
  vm-supervisor run --boot FILE [--work-dir DIR] [--self-destruct poweroff|exit] [--metadata IP|off]
  vm-supervisor service install|uninstall|start|stop|status [--boot FILE] [--system linux-systemd]
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
		fs.StringVar(&cfg.BootPath, "boot", supervisor.DefaultBootPath, "boot file written by cloud-init")
		fs.StringVar(&cfg.WorkDir, "work-dir", "/var/lib/sortie", "directory for the run's workspace, inbox and outbox")
		fs.StringVar(&cfg.SelfDestruct, "self-destruct", "", "override the boot file's self-destruct mode (poweroff, delete or exit)")
		fs.BoolVar(&cfg.NoPowerOff, "no-power-off", false, "never power the machine off, just end (for VMs that are processes on a host)")
		fs.StringVar(&cfg.Metadata, "metadata", supervisor.DefaultMetadataAddr,
			`metadata service address that containers are cut off from, or "off" to leave the firewall alone`)
		_ = fs.Parse(os.Args[2:])
		err = supervisor.RunService(ctx, cfg)
	case "probe-connect":
		// Hidden: the metadata guard's probe, run inside a container.
		fs := flag.NewFlagSet("probe-connect", flag.ExitOnError)
		addr := fs.String("addr", "", "IP:port to try to connect to")
		timeout := fs.Duration("timeout", 2*time.Second, "how long to try")
		_ = fs.Parse(os.Args[2:])
		perr := supervisor.ProbeConnect(ctx, *addr, *timeout)
		if perr != nil {
			fmt.Fprintln(os.Stderr, "vm-supervisor probe-connect:", perr)
		}
		os.Exit(supervisor.ProbeExitCode(perr))
	case "service":
		err = serviceCommand(os.Args[2:])
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
		// ErrBoot and ErrBundleGone exit with supervisor.ExitNoRestart, the
		// unit's RestartPreventExitStatus: a restart cannot mend them.
		os.Exit(supervisor.ExitCode(err))
	}
}

// serviceCommand installs or controls the sortie-supervisor system service.
func serviceCommand(args []string) error {
	if len(args) < 1 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	action := args[0]
	fs := flag.NewFlagSet("service "+action, flag.ExitOnError)
	var o supervisor.ServiceOptions
	fs.StringVar(&o.BootPath, "boot", supervisor.DefaultBootPath, "boot file the service runs with (install)")
	fs.StringVar(&o.System, "system", "", "service manager, e.g. "+supervisor.SystemdSystem+" (default: the detected one)")
	_ = fs.Parse(args[1:])
	switch action {
	case "install":
		return supervisor.InstallService(o)
	case "uninstall":
		return supervisor.UninstallService(o)
	case "start":
		return supervisor.StartService(o)
	case "stop":
		return supervisor.StopService(o)
	case "status":
		st, err := supervisor.ServiceStatus(o)
		if err != nil {
			return err
		}
		fmt.Println(st)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
		return nil
	}
}
