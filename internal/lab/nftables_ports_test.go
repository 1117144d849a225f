package lab_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"novanet/internal/lab"
	"novanet/internal/model"
)

// A tcp port opened to a CIDR on the nftables driver: a client inside the
// CIDR connects to a listener in the VM's namespace, one outside it (a VM
// of the fixed range, with allow_same_net_traffic=false) is refused, and
// removing the rule stops the open connection: the conntrack entries it
// allowed are gone from the VM's host. (VM to VM with an icmp rule from
// the group is TestNFTablesGroupRulesAndTeardown.)
func TestNFTablesPortFromCIDRAndRevocation(t *testing.T) {
	o := nftOptions()
	deny := false
	o.AllowSameNetTraffic = &deny
	l := up(t, o)
	ctx := context.Background()
	vm1 := boot(t, l, "vm1", "compute-1")
	boot(t, l, "vm2", "compute-2")
	c := l.Client()
	def := defaultGroup(t, l)

	in(t, l, "outside", "ip", "route", "add", "10.0.0.0/24", "via", "203.0.113.1")
	stop := tcpEcho(t, l, "vm1", ":8080")
	defer stop()
	dst := vm1.Address + ":8080"
	if conn, err := dialTCPFrom(l, "outside", dst, time.Second); err == nil {
		conn.Close()
		t.Fatal("outside connected to vm1:8080 before any rule opened it")
	}
	web, err := c.CreateSecurityGroupRule(ctx, model.SecurityGroupRule{GroupID: def.ID, Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDR: netip.MustParsePrefix("203.0.113.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	took := waitFor(t, 5*time.Second, "outside ("+lab.OutsideIP+", inside the cidr) connects to vm1:8080", func() bool {
		conn, err = dialTCPFrom(l, "outside", dst, 300*time.Millisecond)
		return err == nil
	})
	t.Logf("outside connected %v after the rule was created", took)
	defer conn.Close()
	if err := echo(conn, "hello", time.Second); err != nil {
		t.Fatalf("echo over the admitted connection: %v", err)
	}
	if listing := nftListing(t, l, "compute-1"); !strings.Contains(listing, "203.0.113.0/24") || !strings.Contains(listing, "8080") {
		t.Errorf("compute-1's nft tables name neither the rule's cidr nor its port:\n%s", listing)
	}
	if c2, err := dialTCPFrom(l, "vm2", dst, time.Second); err == nil {
		c2.Close()
		t.Error("vm2 (10.0.0.x, outside the cidr) connected to vm1:8080")
	}
	if n := flowsTo(t, l, "compute-1", vm1.Address); n < 1 {
		t.Fatalf("compute-1 tracks no flow from outside to vm1:8080 while it is open")
	}

	if err := c.DeleteSecurityGroupRule(ctx, web.ID); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 5*time.Second, "the open connection stops once its rule is removed", func() bool {
		return echo(conn, "again", 300*time.Millisecond) != nil
	})
	t.Logf("the open connection stopped %v after the rule was removed", took)
	if n := flowsTo(t, l, "compute-1", vm1.Address); n != 0 {
		t.Errorf("compute-1 still tracks %d flows from outside to vm1:8080 after the rule allowing them was removed", n)
	}
	if c3, err := dialTCPFrom(l, "outside", dst, time.Second); err == nil {
		c3.Close()
		t.Error("outside connected again after the rule was removed")
	}
	noIptablesChains(t, l, "compute-1")
}

// flowsTo counts host's conntrack entries of tcp flows from the outside
// host to addr:8080 (a dropped packet's unconfirmed entry is not listed).
func flowsTo(t *testing.T, l *lab.Lab, host, addr string) int {
	t.Helper()
	ns, err := l.Namespace(host)
	if err != nil {
		t.Fatal(err)
	}
	// conntrack exits 1 with "0 flow entries" when nothing matches.
	out, _ := lab.In(ns, "conntrack", "-L", "-f", "ipv4", "-p", "tcp", "--orig-src", lab.OutsideIP, "--orig-dst", addr, "--dport", "8080")
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "tcp ") {
			n++
		}
	}
	return n
}
