package conntrack_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"novanet/internal/datapath/conntrack"
	"novanet/internal/netnsdo"
	"novanet/internal/nettest"
)

func TestValidateRefusesAFlush(t *testing.T) {
	for _, f := range []conntrack.Filter{
		{},
		{Proto: "tcp", DstPort: 80},
		{OrigDst: netip.MustParseAddr("192.0.2.1"), DstPort: 80},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("%+v: accepted", f)
		}
		if _, err := conntrack.Delete(context.Background(), f); err == nil {
			t.Errorf("%+v: Delete ran", f)
		}
	}
}

// insert adds a synthetic established tcp entry inside ns.
func insert(t *testing.T, ns, src, dst, dport string) {
	t.Helper()
	nettest.Run(t, ns, "conntrack", "-I", "-p", "tcp", "-s", src, "-d", dst, "--sport", "40000", "--dport", dport,
		"--state", "ESTABLISHED", "-t", "120", "-u", "ASSURED")
}

func TestDeleteMatchesOnlyItsFlows(t *testing.T) {
	nettest.RequireRoot(t, conntrack.Binary)
	ns := nettest.Netns(t, "ct")
	insert(t, ns, "192.0.2.10", "198.51.100.5", "80")
	insert(t, ns, "192.0.2.10", "198.51.100.5", "22")
	insert(t, ns, "192.0.2.11", "198.51.100.6", "80")

	del := func(f conntrack.Filter) int {
		t.Helper()
		var n int
		err := netnsdo.Do(ns, func() error {
			var err error
			n, err = conntrack.Delete(context.Background(), f)
			return err
		})
		if err != nil {
			t.Fatalf("Delete(%s): %v", f, err)
		}
		return n
	}
	if n := del(conntrack.Filter{OrigDst: netip.MustParseAddr("198.51.100.5"), Proto: "tcp", DstPort: 22}); n != 1 {
		t.Fatalf("port 22 flow: deleted %d, want 1", n)
	}
	if n := del(conntrack.Filter{OrigDst: netip.MustParseAddr("198.51.100.5"), Proto: "tcp", DstPort: 22}); n != 0 {
		t.Fatalf("again: deleted %d, want 0", n)
	}
	if n := del(conntrack.Filter{OrigSrc: netip.MustParseAddr("192.0.2.10")}); n != 1 {
		t.Fatalf("by source: deleted %d, want 1", n)
	}
	left := nettest.Run(t, ns, "conntrack", "-L")
	if !strings.Contains(left, "src=192.0.2.11") || strings.Contains(left, "src=192.0.2.10") {
		t.Fatalf("left:\n%s", left)
	}
}
