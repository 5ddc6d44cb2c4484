// Package agentdata is the content the test agent writes, shared with the
// tests that check it arrived whole: numbered log lines and pseudo-random
// outbox files. It imports no testing code, so the agent binary stays small.
package agentdata

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
)

// LineLen is the length of a full numbered log line, newline included.
const LineLen = 100

// Lines returns n bytes of numbered lines: line i is "%08d " and 90 "x"
// and a newline; the last line may be cut short.
func Lines(n int64) []byte {
	var b bytes.Buffer
	filler := strings.Repeat("x", LineLen-10) + "\n"
	for i := 0; int64(b.Len()) < n; i++ {
		fmt.Fprintf(&b, "%08d %s", i, filler)
	}
	return b.Bytes()[:n]
}

// PseudoRandom returns n bytes that depend only on name and n.
func PseudoRandom(name string, n int64) []byte {
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(h.Sum64(), 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
