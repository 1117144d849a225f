package plan

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"novanet/internal/model"
)

func floatingIP(float, fixed, iface, uuid string) model.HostFloatingIP {
	return model.HostFloatingIP{Address: a(float), FixedAddress: a(fixed), Interface: iface, InstanceUUID: uuid}
}

func renderFloating(t *testing.T, pl Plan) string {
	t.Helper()
	var b strings.Builder
	for _, fa := range pl.FloatingAddrs {
		b.WriteString("# ip addr add " + fa.Address.String() + " dev " + fa.Interface + " (nat to " + fa.Fixed.String() + ")\n")
		if fa.Port != "" {
			b.WriteString("# bridge link set dev " + fa.Port + " hairpin on\n")
		}
	}
	for _, w := range pl.Warnings {
		b.WriteString("# warning: " + w + "\n")
	}
	return b.String() + render(t, pl)
}

// Seed 003's controller with vm1 and vm3 given floating addresses (one in
// the range's own interface, one falling back to public_interface), and a
// multi-host compute NATing its own instance's floating address.
func TestGoldenFloating(t *testing.T) {
	single := seedSingleHost()["single-controller"]
	single.st.FloatingIPs = []model.HostFloatingIP{
		floatingIP("198.51.100.20", vm3.Address.String(), "", vm3.UUID),
		floatingIP("198.51.100.3", vm1.Address.String(), "eth0", vm1.UUID),
	}
	multi := seedMultiHost()["multi-compute-1"]
	multi.st.FloatingIPs = []model.HostFloatingIP{floatingIP("198.51.100.5", vm2.Address.String(), "eth1", vm2.UUID)}
	for name, c := range map[string]struct {
		st model.HostState
		o  Options
	}{"floating-single-controller": single, "floating-multi-compute-1": multi} {
		t.Run(name, func(t *testing.T) {
			pl, err := Build(c.st, c.o)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, renderFloating(t, pl))
		})
	}
}

// The rules nova's floating_forward_rules had, in nova's chains, reached
// through the buckets; the fixed_range SNAT comes after float-snat; the
// dmz exemption comes before both.
func TestFloatingRulesFollowNova(t *testing.T) {
	c := seedSingleHost()["single-controller"]
	c.st.FloatingIPs = []model.HostFloatingIP{floatingIP("198.51.100.3", "10.0.0.2", "eth0", vm1.UUID)}
	pl, err := Build(c.st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	nat := pl.Firewall.Table("nat").Listing()
	for _, want := range []string{
		"-A nova-network-PREROUTING -d 198.51.100.0/24 -j nova-network-fdnat-c63364",
		"-A nova-network-OUTPUT -d 198.51.100.0/24 -j nova-network-fdnat-c63364",
		"-A nova-network-fdnat-c63364 -d 198.51.100.0/28 -j nova-network-fdnat-c6336400",
		"-A nova-network-fdnat-c6336400 -d 198.51.100.3/32 -j DNAT --to-destination 10.0.0.2",
		"-A nova-network-float-snat -s 10.0.0.0/24 -j nova-network-fsnat-0a0000",
		"-A nova-network-fsnat-0a0000 -s 10.0.0.0/28 -j nova-network-fsnat-0a000000",
		"-A nova-network-fsnat-0a000000 -s 10.0.0.2/32 -d 10.0.0.2/32 -j SNAT --to-source 198.51.100.3",
		"-A nova-network-fsnat-0a000000 -s 10.0.0.2/32 -o eth0 -j SNAT --to-source 198.51.100.3",
		"-A nova-network-float-snat -s 10.0.0.0/24 -d 10.0.0.0/24 -m conntrack --ctstate DNAT -j SNAT --to-source 10.0.0.1",
	} {
		if !slices.Contains(nat, want) {
			t.Errorf("nat listing lacks %q:\n%s", want, strings.Join(nat, "\n"))
		}
	}
	order := func(rule string) int { return slices.Index(nat, rule) }
	if i, j := order("-A nova-network-snat -j nova-network-float-snat"), order("-A nova-network-snat -s 10.0.0.0/24 -o eth0 -j SNAT --to-source 192.168.56.200"); i < 0 || j < 0 || i > j {
		t.Errorf("float-snat must come before the fixed_range SNAT (at %d and %d)", i, j)
	}
	if i, j := order("-A nova-network-POSTROUTING -s 10.0.0.0/24 -d 10.128.0.0/24 -j ACCEPT"), order("-A POSTROUTING -j nova-postrouting-bottom"); i < 0 || j < 0 {
		t.Errorf("dmz exemption or snat bottom missing")
	}
	if !slices.Equal(pl.FloatingAddrs, []FloatingAddr{{InterfaceAddr: InterfaceAddr{Interface: "eth0", Address: p("198.51.100.3/32")}, Fixed: a("10.0.0.2")}}) {
		t.Errorf("floating addrs = %v", pl.FloatingAddrs)
	}
}

// hostWithFloats is a network host NATing n floating addresses from one
// dense pool, as a pool hands them out.
func hostWithFloats(n int) (model.HostState, Options) {
	c := seedSingleHost()["single-controller"]
	net := &c.st.Networks[0]
	net.Network.CIDR = p("10.0.0.0/20")
	c.st.Options.FixedRanges = []netip.Prefix{p("10.0.0.0/20")}
	fixed := a("10.0.0.10")
	float := a("198.51.96.1")
	for i := 0; i < n; i++ {
		c.st.FloatingIPs = append(c.st.FloatingIPs, model.HostFloatingIP{Address: float, FixedAddress: fixed, Interface: "eth0", InstanceUUID: fmt.Sprint(i)})
		fixed, float = fixed.Next(), float.Next()
	}
	return c.st, c.o
}

// changedChains lists the chains of table nat whose rules differ.
func changedChains(before, after Plan) []string {
	b, a := before.Firewall.Table("nat"), after.Firewall.Table("nat")
	var out []string
	for _, name := range a.OwnedChainNames() {
		if c := b.Chain(name); c == nil || !reflect.DeepEqual(c.Rules, a.Chain(name).Rules) {
			out = append(out, name)
		}
	}
	for _, name := range b.OwnedChainNames() {
		if a.Chain(name) == nil {
			out = append(out, name)
		}
	}
	return out
}

// Associating one more address at 1,000 changes chains of at most a
// bucket's size: the applier rewrites whole chains, so this is what keeps
// the cost flat.
func TestOneAssociationTouchesSmallChains(t *testing.T) {
	for _, n := range []int{1, 100, 1000} {
		st, o := hostWithFloats(n + 1)
		after, err := Build(st, o)
		if err != nil {
			t.Fatal(err)
		}
		st.FloatingIPs = st.FloatingIPs[:n]
		before, err := Build(st, o)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, name := range changedChains(before, after) {
			rules := len(after.Firewall.Table("nat").Chain(name).Rules)
			if strings.Contains(name, "-f") && rules > 32 {
				t.Errorf("at %d: bucket %s has %d rules", n, name, rules)
			}
			total += rules
		}
		// Two buckets (≤ 16 + 32 rules), their /24 chains when a bucket
		// opens (≤ 16 each), and the top chains when a /24 opens
		// (PREROUTING, OUTPUT, float-snat: one jump per /24 in use).
		if limit := 48 + 32 + 3*(n/256+3); total > limit {
			t.Errorf("at %d floating ips one association rewrites %d rules (limit %d)", n, total, limit)
		}
	}
}

func TestFloatingWithoutNATIsAWarning(t *testing.T) {
	c := seedSingleHost()["single-compute-1"]
	c.st.FloatingIPs = []model.HostFloatingIP{floatingIP("198.51.100.3", "10.0.0.2", "eth0", vm1.UUID)}
	pl, err := Build(c.st, c.o)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.FloatingAddrs) != 0 || len(pl.Warnings) != 1 || !strings.Contains(pl.Warnings[0], "NATs no network") {
		t.Errorf("addrs %v warnings %q", pl.FloatingAddrs, pl.Warnings)
	}
}
