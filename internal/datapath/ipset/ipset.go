// Package ipset keeps the kernel's ipsets named nova-sg-* equal to the
// plan's address sets (one per source security group). Members change in
// place with one `ipset restore -exist` of add/del lines, so the iptables
// rules that match a set are never rewritten for a membership change and
// its cost does not grow with the number of instances. Sets of any other
// name are left alone.
package ipset

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"novanet/internal/datapath/runner"
	"novanet/internal/plan"
)

// Sets is the applier. Call New.
type Sets struct {
	// Netns, when set, runs every command in that named namespace (tests).
	Netns string
	// Runner runs ipset (runner.Exec in Netns when nil).
	Runner runner.Runner

	mu    sync.Mutex
	known map[string][]netip.Addr // owned set -> members; nil: read the kernel
}

// New returns an applier acting on the current network namespace.
func New() *Sets { return &Sets{} }

func (s *Sets) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	r := s.Runner
	if r == nil {
		r = runner.Exec{Netns: s.Netns}
	}
	return r.Run(ctx, stdin, "ipset", args...)
}

// Ensure creates the wanted sets that are missing and makes every wanted
// set's members match. It destroys nothing: a set still named by a rule
// cannot go before the rule does (see Prune). full re-reads the kernel.
func (s *Sets) Ensure(ctx context.Context, want []plan.AddrSet, full bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(ctx, full); err != nil {
		if len(want) == 0 {
			// A host without ipset (a network host) needs none.
			return nil
		}
		return err
	}
	var b strings.Builder
	next := make(map[string][]netip.Addr, len(s.known))
	for name, m := range s.known {
		next[name] = m
	}
	for _, set := range want {
		have, ok := s.known[set.Name]
		if !ok {
			b.WriteString("create " + set.Name + " " + plan.IpsetType + " family inet\n")
		}
		for _, m := range set.Members {
			if _, found := slices.BinarySearchFunc(have, m, netip.Addr.Compare); !found {
				b.WriteString("add " + set.Name + " " + m.String() + "\n")
			}
		}
		for _, m := range have {
			if _, found := slices.BinarySearchFunc(set.Members, m, netip.Addr.Compare); !found {
				b.WriteString("del " + set.Name + " " + m.String() + "\n")
			}
		}
		next[set.Name] = set.Members
	}
	if b.Len() == 0 {
		return nil
	}
	if err := s.restore(ctx, b.String()); err != nil {
		return err
	}
	s.known = next
	return nil
}

// Prune destroys owned sets the plan no longer names. Call it after the
// rules naming them are gone.
func (s *Sets) Prune(ctx context.Context, want []plan.AddrSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(ctx, false); err != nil {
		if len(want) == 0 {
			return nil // nothing could have been made without ipset
		}
		return err
	}
	var b strings.Builder
	var gone []string
	for name := range s.known {
		if !slices.ContainsFunc(want, func(x plan.AddrSet) bool { return x.Name == name }) {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		b.WriteString("destroy " + name + "\n")
	}
	if b.Len() == 0 {
		return nil
	}
	if err := s.restore(ctx, b.String()); err != nil {
		return err
	}
	for _, name := range gone {
		delete(s.known, name)
	}
	return nil
}

func (s *Sets) restore(ctx context.Context, text string) error {
	if _, err := s.run(ctx, strings.NewReader(text), "restore", "-exist"); err != nil {
		s.known = nil // the kernel may hold anything now: read it next time
		return fmt.Errorf("ipset restore failed: %w (input: %q)", err, firstLines(text, 5))
	}
	return nil
}

func (s *Sets) load(ctx context.Context, full bool) error {
	if s.known != nil && !full {
		return nil
	}
	out, err := s.run(ctx, nil, "save")
	if err != nil {
		return fmt.Errorf("%w; is ipset installed and are we root?", err)
	}
	s.known = parseSave(out)
	return nil
}

// parseSave reads the owned sets of `ipset save`: "create NAME TYPE ..."
// and "add NAME ADDR" lines. Members come back sorted.
func parseSave(out []byte) map[string][]netip.Addr {
	sets := map[string][]netip.Addr{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[1], plan.SetPrefix) {
			continue
		}
		switch f[0] {
		case "create":
			if _, ok := sets[f[1]]; !ok {
				sets[f[1]] = []netip.Addr{}
			}
		case "add":
			if a, err := netip.ParseAddr(f[2]); err == nil {
				sets[f[1]] = append(sets[f[1]], a)
			}
		}
	}
	for name := range sets {
		slices.SortFunc(sets[name], netip.Addr.Compare)
	}
	return sets
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}
