// Package l2guard programs the plan's L2 anti-spoofing (plan.L2Guard) into
// novanet's own nftables table of the bridge family, in-process over
// netlink (github.com/google/nftables; no nft process on the hot path).
//
// Layout: one base chain at bridge prerouting whose rules only drop, and
// three sets keyed by the input port: the guarded ports, port . MAC and
// port . address. A frame pays a few hash lookups and a new port three set
// elements in one transaction, however many ports the bridge has. No rule
// jumps anywhere, so a commit has no chain graph to re-validate.
package l2guard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"novanet/internal/datapath/nfconn"
	"novanet/internal/plan"
)

// batchPorts bounds the ports one netlink transaction adds (three
// elements each), so a large first sync stays within message limits.
const batchPorts = 500

// Guard is the applier. Call New.
type Guard struct {
	// NetNS, when non-zero, is a namespace fd to program (tests).
	NetNS int

	mu    sync.Mutex
	known *kernelGuard // nil: read the kernel
	// transactions counts netlink batches sent (Transactions).
	transactions atomic.Int64
	// lasting is the netlink connection kept between applies.
	lasting nfconn.Lasting
}

// kernelGuard is what the table holds.
type kernelGuard struct {
	table bool
	ports map[string]plan.GuardPort // by device, from the three sets
}

// New returns an applier for the current network namespace.
func New() *Guard { return &Guard{} }

// conn returns the kept connection, opening it on first use (opening
// one costs more than a small transaction).
func (g *Guard) conn() (*nftables.Conn, error) { return g.lasting.Get(g.NetNS) }

// dropConn closes the kept connection after a failure, so nothing queued
// before it rides on the next batch.
func (g *Guard) dropConn() { g.lasting.Drop() }

var table = &nftables.Table{Name: plan.GuardTable, Family: nftables.TableFamilyBridge}

var (
	macKey, _  = nftables.ConcatSetType(nftables.TypeIFName, nftables.TypeEtherAddr)
	ipv4Key, _ = nftables.ConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)
)

// The sets; host byte order tells nft how to print the ifname keys.
func portSet() *nftables.Set {
	return &nftables.Set{Table: table, Name: plan.GuardPortSet, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
}
func macSet() *nftables.Set {
	return &nftables.Set{Table: table, Name: plan.GuardMACSet, KeyType: macKey, Concatenation: true}
}
func ipv4Set() *nftables.Set {
	return &nftables.Set{Table: table, Name: plan.GuardIPv4Set, KeyType: ipv4Key, Concatenation: true}
}

// Apply makes the kernel's guard match want. full re-reads the kernel.
// With no port to guard, the table goes.
func (g *Guard) Apply(want plan.L2Guard, full bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.apply(want, full)
	if err != nil {
		g.dropConn()
	}
	return err
}

func (g *Guard) apply(want plan.L2Guard, full bool) error {
	c, err := g.conn()
	if err != nil {
		return err
	}
	if g.known == nil || full {
		if g.known, err = g.read(c); err != nil {
			g.known = nil
			if want.IsZero() {
				return nil // no port to guard: a host without nf_tables needs none
			}
			return err
		}
	}
	if want.IsZero() {
		if !g.known.table {
			return nil
		}
		c.DelTable(table)
		if err := g.flush(c); err != nil {
			return err
		}
		g.known = &kernelGuard{ports: map[string]plan.GuardPort{}}
		return nil
	}
	ops := 0
	if !g.known.table {
		if err := g.createTable(c); err != nil {
			return err
		}
		ops++
	}
	ports, macs, ips := portSet(), macSet(), ipv4Set()
	wanted := make(map[string]plan.GuardPort, len(want.Ports))
	for _, p := range want.Ports {
		wanted[p.Device] = p
	}
	// Ports that go or change first (their old elements), then new and
	// changed ports in chunks of whole ports.
	var gone []plan.GuardPort
	for dev, have := range g.known.ports {
		if w, ok := wanted[dev]; !ok || w != have {
			gone = append(gone, have)
		}
	}
	if len(gone) > 0 {
		if err := errorsOf(
			c.SetDeleteElements(macs, macElems(gone)),
			c.SetDeleteElements(ips, ipv4Elems(gone)),
			c.SetDeleteElements(ports, portElems(gone)),
		); err != nil {
			return err
		}
		ops++
	}
	var add []plan.GuardPort
	for _, p := range want.Ports {
		if have, ok := g.known.ports[p.Device]; !ok || have != p {
			add = append(add, p)
		}
	}
	for len(add) > 0 || ops > 0 {
		chunk := add[:min(len(add), batchPorts)]
		add = add[len(chunk):]
		if len(chunk) > 0 {
			if err := errorsOf(
				c.SetAddElements(ports, portElems(chunk)),
				c.SetAddElements(macs, macElems(chunk)),
				c.SetAddElements(ips, ipv4Elems(chunk)),
			); err != nil {
				return err
			}
		}
		if err := g.flush(c); err != nil {
			return err
		}
		ops = 0
	}
	g.known = &kernelGuard{table: true, ports: wanted}
	return nil
}

func errorsOf(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func portElems(ps []plan.GuardPort) []nftables.SetElement {
	out := make([]nftables.SetElement, len(ps))
	for i, p := range ps {
		out[i] = nftables.SetElement{Key: ifname(p.Device)}
	}
	return out
}

func macElems(ps []plan.GuardPort) []nftables.SetElement {
	out := make([]nftables.SetElement, len(ps))
	for i, p := range ps {
		out[i] = nftables.SetElement{Key: concat(ifname(p.Device), p.MAC[:])}
	}
	return out
}

func ipv4Elems(ps []plan.GuardPort) []nftables.SetElement {
	out := make([]nftables.SetElement, len(ps))
	for i, p := range ps {
		a := p.IPv4.As4()
		out[i] = nftables.SetElement{Key: concat(ifname(p.Device), a[:])}
	}
	return out
}

// concat lays out a concatenated key: each field padded to 4 bytes.
func concat(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

// Transactions is how many netlink batches this guard sent, failed ones
// included (tests and benchmarks prove with it that an unchanged plan
// writes nothing). Safe to call from any goroutine, during an Apply too.
func (g *Guard) Transactions() int64 { return g.transactions.Load() }

// flush sends the batch. On an error the kernel may still have committed
// it (ENOBUFS after a large batch): the next sync re-reads instead of
// trusting either outcome.
func (g *Guard) flush(c *nftables.Conn) error {
	g.transactions.Add(1)
	if err := c.Flush(); err != nil {
		g.known = nil
		return fmt.Errorf("netlink transaction: %w", err)
	}
	return nil
}

// createTable adds the table, its sets and the base chain's drops to the
// pending batch (plan.GuardRules, in that order).
func (g *Guard) createTable(c *nftables.Conn) error {
	c.AddTable(table)
	types := &nftables.Set{Table: table, Name: plan.GuardEthertypes, KeyType: nftables.TypeEtherType, Constant: true}
	if err := g.lasting.AddSet(c, types, []nftables.SetElement{{Key: be16(unix.ETH_P_IP)}, {Key: be16(unix.ETH_P_ARP)}, {Key: be16(unix.ETH_P_IPV6)}}); err != nil {
		return fmt.Errorf("l2 guard set %s: %w", types.Name, err)
	}
	ports, macs, ips := portSet(), macSet(), ipv4Set()
	for _, s := range []*nftables.Set{ports, macs, ips} {
		if err := g.lasting.AddSet(c, s, nil); err != nil {
			return fmt.Errorf("l2 guard set %s: %w", s.Name, err)
		}
	}
	prio := nftables.ChainPriority(-300)
	base := c.AddChain(&nftables.Chain{Name: plan.GuardBaseChain, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: &prio, Policy: policyAccept()})

	zero := []byte{0, 0, 0, 0}
	ll := func(reg, off, n uint32) expr.Any {
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseLLHeader, Offset: off, Len: n}
	}
	nh := func(reg, off, n uint32) expr.Any {
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
	}
	th := func(off, n uint32) expr.Any {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}
	}
	eq := func(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
	ne := func(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: b} }
	etherType := func(t uint16) []expr.Any { return []expr.Any{ll(1, 12, 2), eq(be16(t))} }
	l4 := func(proto byte) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto})}
	}
	// notPaired: (iifname . the field loaded into reg32 12) is not in set s.
	// The name takes 32-bit registers 8-11, the field starts at 12.
	notPaired := func(field expr.Any, s *nftables.Set) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 8}, field,
			&expr.Lookup{SourceRegister: 8, SetName: s.Name, SetID: s.ID, Invert: true}}
	}
	ipv4, arp, ipv6 := etherType(unix.ETH_P_IP), etherType(unix.ETH_P_ARP), etherType(unix.ETH_P_IPV6)
	fromZero := []expr.Any{nh(1, 12, 4), eq(zero)}
	rules := [][]expr.Any{
		notPaired(ll(12, 6, 6), macs),
		{ll(1, 12, 2), &expr.Lookup{SourceRegister: 1, SetName: types.Name, SetID: types.ID, Invert: true}},
		join(ipv4, nh(1, 12, 4), ne(zero), notPaired(nh(12, 12, 4), ips)),
		join(ipv4, fromZero, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, ne([]byte{unix.IPPROTO_UDP})),
		join(ipv4, fromZero, l4(unix.IPPROTO_UDP), th(0, 2), ne(be16(68))),
		join(ipv4, fromZero, l4(unix.IPPROTO_UDP), th(2, 2), ne(be16(67))),
		join(ipv4, l4(unix.IPPROTO_UDP), th(0, 2), eq(be16(67))),
		join(arp, nh(1, 0, 2), ne(be16(1))),
		join(arp, nh(1, 2, 2), ne(be16(unix.ETH_P_IP))),
		join(arp, nh(1, 4, 1), ne([]byte{6})),
		join(arp, nh(1, 5, 1), ne([]byte{4})),
		join(arp, notPaired(nh(12, 8, 6), macs)),
		join(arp, nh(1, 14, 4), ne(zero), notPaired(nh(12, 14, 4), ips)),
		join(ipv6, l4(unix.IPPROTO_ICMPV6), th(0, 1), eq([]byte{134})),
		join(ipv6, l4(unix.IPPROTO_UDP), th(0, 2), eq(be16(547))),
	}
	guarded := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: ports.Name, SetID: ports.ID},
	}
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: table, Chain: base, Exprs: join(guarded, r, &expr.Verdict{Kind: expr.VerdictDrop})})
	}
	return nil
}

func policyAccept() *nftables.ChainPolicy {
	p := nftables.ChainPolicyAccept
	return &p
}

// read lists the owned table's ports from its three sets; a port is
// guarded when all three hold it (anything else is re-added).
func (g *Guard) read(c *nftables.Conn) (*kernelGuard, error) {
	k := &kernelGuard{ports: map[string]plan.GuardPort{}}
	if _, err := c.ListTableOfFamily(plan.GuardTable, nftables.TableFamilyBridge); err != nil {
		if isNotExist(err) {
			return k, nil
		}
		return nil, fmt.Errorf("list table bridge %s: %w", plan.GuardTable, err)
	}
	elems := map[string][]nftables.SetElement{}
	var missing error
	for _, name := range []string{plan.GuardPortSet, plan.GuardMACSet, plan.GuardIPv4Set, plan.GuardEthertypes} {
		s, err := c.GetSetByName(table, name)
		if err != nil {
			missing = err
			break
		}
		if elems[name], err = c.GetSetElements(s); err != nil {
			return nil, fmt.Errorf("list set %s: %w", name, err)
		}
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	rules := 0
	for _, ch := range chains {
		if ch.Table.Name == plan.GuardTable && ch.Name == plan.GuardBaseChain {
			rs, err := c.GetRules(table, ch)
			if err != nil {
				return nil, fmt.Errorf("list chain %s: %w", ch.Name, err)
			}
			rules = len(rs)
		}
	}
	if missing != nil || rules != len(plan.GuardRules()) {
		// Half a table (someone deleted or added parts): rebuild it whole.
		c.DelTable(table)
		if err := g.flush(c); err != nil {
			return nil, err
		}
		return k, nil
	}
	k.table = true
	macs := map[string][6]byte{}
	for _, e := range elems[plan.GuardMACSet] {
		if len(e.Key) >= unix.IFNAMSIZ+6 {
			macs[devName(e.Key)] = [6]byte(e.Key[unix.IFNAMSIZ : unix.IFNAMSIZ+6])
		}
	}
	ips := map[string]netip.Addr{}
	for _, e := range elems[plan.GuardIPv4Set] {
		if len(e.Key) >= unix.IFNAMSIZ+4 {
			ips[devName(e.Key)] = netip.AddrFrom4([4]byte(e.Key[unix.IFNAMSIZ : unix.IFNAMSIZ+4]))
		}
	}
	for _, e := range elems[plan.GuardPortSet] {
		dev := devName(e.Key)
		mac, okM := macs[dev]
		ip, okI := ips[dev]
		if okM && okI {
			k.ports[dev] = plan.GuardPort{Device: dev, MAC: mac, IPv4: ip}
		} else {
			// Incomplete: recorded with a zero address, so it differs from
			// any wanted port and is deleted and added again.
			k.ports[dev] = plan.GuardPort{Device: dev, MAC: mac}
		}
	}
	return k, nil
}

func devName(key []byte) string {
	return string(bytes.TrimRight(key[:min(len(key), unix.IFNAMSIZ)], "\x00"))
}

func isNotExist(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such file") || strings.Contains(err.Error(), "not exist"))
}

func join(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch v := p.(type) {
		case []expr.Any:
			out = append(out, v...)
		case expr.Any:
			out = append(out, v)
		}
	}
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func ifname(dev string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, dev)
	return b
}

// Devices lists the guarded devices the kernel holds (tests, doctor).
func (g *Guard) Devices() ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, err := g.conn()
	if err != nil {
		return nil, err
	}
	k, err := g.read(c)
	if err != nil {
		g.dropConn()
		return nil, err
	}
	out := make([]string, 0, len(k.ports))
	for dev := range k.ports {
		out = append(out, dev)
	}
	slices.Sort(out)
	return out, nil
}

// ApplyChange applies the ports ch adds and removes, trusting what was
// applied last for every other port: one transaction whatever the number
// of ports. With nothing known yet (a start, a failure) or the guard
// becoming empty it compares the whole of want instead.
func (g *Guard) ApplyChange(want plan.L2Guard, ch plan.GuardChange) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	if g.known == nil || !g.known.table || want.IsZero() {
		err = g.apply(want, false)
	} else if err = g.applyChange(ch); err != nil {
		// Compare the whole guard with the kernel on a fresh socket.
		g.dropConn()
		g.known = nil
		err = g.apply(want, true)
	}
	if err != nil {
		g.dropConn()
	}
	return err
}

func (g *Guard) applyChange(ch plan.GuardChange) error {
	if ch.IsZero() {
		return nil
	}
	c, err := g.conn()
	if err != nil {
		return err
	}
	var gone []plan.GuardPort
	for _, p := range ch.Removed {
		if have, ok := g.known.ports[p.Device]; ok {
			gone = append(gone, have)
		}
	}
	ports, macs, ips := portSet(), macSet(), ipv4Set()
	if len(gone) > 0 {
		if err := errorsOf(
			c.SetDeleteElements(macs, macElems(gone)),
			c.SetDeleteElements(ips, ipv4Elems(gone)),
			c.SetDeleteElements(ports, portElems(gone)),
		); err != nil {
			return err
		}
	}
	if len(ch.Added) > 0 {
		if err := errorsOf(
			c.SetAddElements(ports, portElems(ch.Added)),
			c.SetAddElements(macs, macElems(ch.Added)),
			c.SetAddElements(ips, ipv4Elems(ch.Added)),
		); err != nil {
			return err
		}
	}
	if err := g.flush(c); err != nil {
		g.known = nil // read the kernel next time
		return err
	}
	for _, p := range gone {
		delete(g.known.ports, p.Device)
	}
	for _, p := range ch.Added {
		g.known.ports[p.Device] = p
	}
	return nil
}
