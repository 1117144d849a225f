package conntrack

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// scripted answers RunCombined with fixed output and error, and keeps the
// command line it was given.
type scripted struct {
	out  string
	err  error
	line string
}

func (s *scripted) RunCombined(_ context.Context, _ io.Reader, name string, args ...string) ([]byte, error) {
	s.line = strings.Join(append([]string{name}, args...), " ")
	return []byte(s.out), s.err
}

func TestDeleteReadsTheCountAndTakesNoMatchForSuccess(t *testing.T) {
	f := Filter{Proto: "tcp", OrigDst: netip.MustParseAddr("203.0.113.10"), DstPort: 22}
	for _, c := range []struct {
		name    string
		run     scripted
		n       int
		wantErr bool
	}{
		{"deleted", scripted{out: "tcp 6 119 ESTABLISHED ...\nconntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n"}, 2, false},
		{"nothing matched (exit 1)", scripted{out: "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n", err: errors.New("exit status 1")}, 0, false},
		{"failed", scripted{out: "conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters\n", err: errors.New("exit status 2")}, 0, true},
	} {
		n, err := deleteWith(context.Background(), &c.run, f)
		if n != c.n || (err != nil) != c.wantErr {
			t.Errorf("%s: %d, %v; want %d, error %v", c.name, n, err, c.n, c.wantErr)
		}
		if want := "conntrack -D -f ipv4 --orig-dst 203.0.113.10 -p tcp --orig-port-dst 22"; c.run.line != want {
			t.Errorf("%s: ran %q, want %q", c.name, c.run.line, want)
		}
	}
}
