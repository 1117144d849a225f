package agent

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"novanet/internal/nettest"
)

// novaTable renders the filter table nova's IptablesManager kept on a
// host with n instances: its wrapped chains and, per instance, the
// seven-rule nova-compute-inst chain of seed 003 and the dispatch rule.
func novaTable(n int) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
	for _, c := range []string{"nova-compute-FORWARD", "nova-compute-INPUT", "nova-compute-OUTPUT", "nova-compute-local", "nova-compute-provider", "nova-compute-sg-fallback", "nova-filter-top"} {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, ":nova-compute-inst-%d - [0:0]\n", i)
	}
	b.WriteString("-A INPUT -j nova-compute-INPUT\n-A FORWARD -j nova-filter-top\n-A FORWARD -j nova-compute-FORWARD\n-A OUTPUT -j nova-filter-top\n-A OUTPUT -j nova-compute-OUTPUT\n")
	b.WriteString("-A nova-compute-FORWARD -i br100 -j ACCEPT\n-A nova-compute-FORWARD -o br100 -j ACCEPT\n-A nova-compute-sg-fallback -j DROP\n-A nova-filter-top -j nova-compute-local\n")
	for i := 0; i < n; i++ {
		ip := fmt.Sprintf("10.0.%d.%d", 1+i/250, 2+i%250)
		c := fmt.Sprintf("nova-compute-inst-%d", i)
		fmt.Fprintf(&b, "-A nova-compute-local -d %s/32 -j %s\n", ip, c)
		fmt.Fprintf(&b, "-A %s -m state --state INVALID -j DROP\n", c)
		fmt.Fprintf(&b, "-A %s -m state --state RELATED,ESTABLISHED -j ACCEPT\n", c)
		fmt.Fprintf(&b, "-A %s -j nova-compute-provider\n", c)
		fmt.Fprintf(&b, "-A %s -s 10.0.0.1/32 -p udp -m udp --sport 67 --dport 68 -j ACCEPT\n", c)
		fmt.Fprintf(&b, "-A %s -s 10.0.0.0/16 -j ACCEPT\n", c)
		fmt.Fprintf(&b, "-A %s -p tcp -m tcp --dport 22 -j ACCEPT\n", c)
		fmt.Fprintf(&b, "-A %s -j nova-compute-sg-fallback\n", c)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func restore(tb testing.TB, ns string, text string, args ...string) {
	tb.Helper()
	cmd := nettest.Cmd(ns, append([]string{"iptables-restore"}, args...)...)
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("iptables-restore: %v: %s", err, out)
	}
}

// BenchmarkBaselineNovaAddInstance measures nova's way of adding one
// instance on a host that has n: read the whole table (iptables-save),
// regenerate it with one more instance, and restore all of it.
func BenchmarkBaselineNovaAddInstance(b *testing.B) {
	nettest.RequireRoot(b, "iptables-restore", "iptables-save")
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			ns := nettest.Netns(b, "nnbench")
			restore(b, ns, novaTable(n))
			next := novaTable(n + 1)
			prev := novaTable(n)
			i := 0
			for b.Loop() {
				out, err := nettest.Cmd(ns, "iptables-save", "-t", "filter").Output()
				if err != nil || !bytes.Contains(out, []byte("nova-compute-local")) {
					b.Fatalf("iptables-save: %v", err)
				}
				// Alternate n+1 and n so every iteration is a real change.
				text := next
				if i%2 == 1 {
					text = prev
				}
				i++
				restore(b, ns, text)
			}
		})
	}
}
