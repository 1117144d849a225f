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
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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
	// nl is the netlink handle member changes go through (nil until the
	// first; dropped on any error).
	nl *netlink.Handle
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

// ApplyChange adds and removes the members changes name, over netlink
// (no ipset process: a few microseconds a member), trusting what was
// applied last for the rest. want is the whole planned list: a set it
// does not know yet, nothing known (a start, a failure) or a netlink
// error makes it compare the whole of want instead (Ensure).
func (s *Sets) ApplyChange(ctx context.Context, want []plan.AddrSet, changes []plan.SetChange) error {
	if len(changes) == 0 {
		return nil
	}
	s.mu.Lock()
	err := s.applyChange(want, changes)
	s.mu.Unlock()
	if err != nil {
		return s.Ensure(ctx, want, false)
	}
	return nil
}

var errUnknownSet = errors.New("set not known")

func (s *Sets) applyChange(want []plan.AddrSet, changes []plan.SetChange) error {
	if s.known == nil {
		return errUnknownSet
	}
	for _, c := range changes {
		if _, ok := s.known[c.Name]; !ok {
			return errUnknownSet
		}
	}
	if s.nl == nil {
		h, err := s.handle()
		if err != nil {
			return err
		}
		s.nl = h
	}
	for _, c := range changes {
		// Replace: an add of a present member or a del of an absent one
		// is not an error (ipset's -exist).
		for _, m := range c.Removed {
			if err := s.nl.IpsetDel(c.Name, &netlink.IPSetEntry{IP: m.AsSlice(), Replace: true}); err != nil {
				return s.failed(fmt.Errorf("ipset del %s %s: %w", c.Name, m, err))
			}
		}
		for _, m := range c.Added {
			if err := s.nl.IpsetAdd(c.Name, &netlink.IPSetEntry{IP: m.AsSlice(), Replace: true}); err != nil {
				return s.failed(fmt.Errorf("ipset add %s %s: %w", c.Name, m, err))
			}
		}
		if i := slices.IndexFunc(want, func(w plan.AddrSet) bool { return w.Name == c.Name }); i >= 0 {
			s.known[c.Name] = want[i].Members
		} else {
			s.known = nil
			return errUnknownSet
		}
	}
	return nil
}

// failed drops the handle and what is known: the kernel is read next.
func (s *Sets) failed(err error) error {
	s.nl.Close()
	s.nl, s.known = nil, nil
	return err
}

func (s *Sets) handle() (*netlink.Handle, error) {
	if s.Netns == "" {
		return netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	ns, err := netns.GetFromName(s.Netns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
}
