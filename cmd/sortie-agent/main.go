// Package main is the sortie-agent command: the entrypoint of the reference Sortie agent image
// and the agent's helper for the inbox and the outbox. See usage below and
// docs/agent-contract.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/sortie/sortie/internal/agent"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes of the helper modes. run passes the child's code through.
const (
	exitOK      = 0
	exitFailed  = 1
	exitTimeout = 2  // wait-message: nothing arrived in time
	exitUsage   = 64 // EX_USAGE: bad arguments
)

const usage = `sortie-agent - entrypoint and helper of a Sortie agent container (contract v1)

Usage:
  sortie-agent run [--] CMD [ARGS...]   run CMD as the container's main process
  sortie-agent CMD [ARGS...]            the same
  sortie-agent wait-message [-after SEQ] [-timeout D] [-json]
                                        wait for the next inbox message, print its text
  sortie-agent outbox NAME [FILE|-]     copy FILE (default: stdin) into the outbox as NAME
  sortie-agent help | version

run: CMD runs in its own process group; SIGTERM, SIGINT, SIGHUP, SIGQUIT,
SIGUSR1 and SIGUSR2 are forwarded to the group; orphans are reaped; the exit
code is CMD's (128+N when signal N killed it; 127 not found, 126 not runnable).

wait-message: without -after, returns the first message after the last one
it returned (a cursor file under $TMPDIR or /tmp); -after SEQ returns the
first message with seq > SEQ and leaves the cursor alone. -timeout 0 (the
default) waits forever; on timeout it exits 2. -json prints the message file.

outbox: NAME is relative, may have subdirectories, and no element may be
'..' or start with '.'. The file appears atomically (dot-temp + rename).

The container (set by the supervisor; defaults in brackets):
  /workspace           the run's workspace, read-write, the working dir  SORTIE_WORKSPACE
  /sortie/input.json   the run's input JSON, when there is one           SORTIE_INPUT
  /sortie/inbox/       follow-up messages, <seq 10 digits>.json          SORTIE_INBOX
  /sortie/outbox/      files to ship back to the host                    SORTIE_OUTBOX
  SORTIE_RUN_ID        the run's ID
Stop is SIGTERM, a grace period, then SIGKILL. The exit code is the run's.
`

func main() {
	os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// cli runs one invocation and returns the process exit code. It takes files,
// not readers and writers, because run hands them to the child as they are.
func cli(args []string, stdin, stdout, stderr *os.File) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return run(args[1:], stdin, stdout, stderr)
	case "wait-message":
		return waitMessage(args[1:], stdout, stderr)
	case "outbox":
		return outbox(args[1:], stdin, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "sortie-agent", version)
		return exitOK
	default: // the image's entrypoint was given a command
		return run(args, stdin, stdout, stderr)
	}
}

func run(args []string, stdin, stdout, stderr *os.File) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "sortie-agent run: no command given (try: sortie-agent help)")
		return exitUsage
	}
	code, err := agent.Run(args, stdin, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sortie-agent:", err)
	}
	return code
}

func waitMessage(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sortie-agent wait-message", flag.ContinueOnError)
	fs.SetOutput(stderr)
	after := fs.Int64("after", -1, "return the first message with seq > `SEQ` (default: after the cursor)")
	asJSON := fs.Bool("json", false, "print the whole message JSON instead of its text")
	timeout := time.Duration(0)
	fs.Func("timeout", "give up after `D` (a Go duration such as 120s, or seconds; 0: never)", func(s string) error {
		d, err := parseTimeout(s)
		timeout = d
		return err
	})
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sortie-agent wait-message: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var (
		d   agent.Delivery
		err error
	)
	if *after >= 0 {
		d, err = agent.Inbox{}.After(ctx, *after)
	} else {
		d, err = agent.Inbox{}.Next(ctx)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "sortie-agent wait-message: no message within %s\n", timeout)
		return exitTimeout
	case err != nil:
		fmt.Fprintln(stderr, "sortie-agent wait-message:", err)
		return exitFailed
	}
	out := d.Raw
	if !*asJSON {
		out = []byte(d.Message.Text)
		if len(out) == 0 { // a data-only message
			out = d.Message.Data
		}
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintln(stderr, "sortie-agent wait-message:", err)
		return exitFailed
	}
	return exitOK
}

// parseTimeout accepts a Go duration ("120s", "2m") or a number of seconds.
func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%q is neither a duration (120s) nor seconds (120)", s)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

func outbox(args []string, stdin io.Reader, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(stderr, "usage: sortie-agent outbox NAME [FILE|-]")
		return exitUsage
	}
	name, src := args[0], stdin
	if err := agent.CheckName(name); err != nil {
		fmt.Fprintln(stderr, "sortie-agent outbox:", err)
		return exitUsage
	}
	if len(args) == 2 && args[1] != "-" {
		f, err := os.Open(args[1])
		if err != nil {
			fmt.Fprintln(stderr, "sortie-agent outbox:", err)
			return exitFailed
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			fmt.Fprintf(stderr, "sortie-agent outbox: %s is a directory\n", args[1])
			return exitFailed
		}
		src = f
	}
	if _, err := (agent.Outbox{}).Put(name, src); err != nil {
		fmt.Fprintln(stderr, "sortie-agent outbox:", err)
		return exitFailed
	}
	return exitOK
}
