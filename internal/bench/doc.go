// Package bench measures Sortie end to end on this machine and prints the
// table that `make bench` shows: time from Start to container start by phase
// against a bare docker run, outbox latency, store request rates while the
// agent is idle, and the supervisor's memory and binary size.
package bench
