// Package l2guard programs the plan's L2 anti-spoofing (plan.L2Guard) into
// novanet's own nftables table of the bridge family, in-process over
// netlink (github.com/google/nftables; no nft process on the hot path).
//
// Layout: a base chain at bridge prerouting that only drops looks the
// input port up in a verdict map and jumps to that port's chain, whose
// rules compare the frame with the port's constants and drop what does not
// match. A frame pays one hash lookup and one port's rules however many
// ports the bridge has. A port's chain name carries its MAC and address,
// so a resync compares names (two dumps), never rules; a port whose MAC or
// address changes gets a new chain and its map element moves in the same
// transaction.
package l2guard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"novanet/internal/plan"
)

// batchPorts bounds the ports one netlink transaction adds, so a large
// first sync does not fail with "message too long" (a port is ~15 rules).
const batchPorts = 100

const ethertypeSet = "allowed_ethertypes"

// Guard is the applier. Call New.
type Guard struct {
	// NetNS, when non-zero, is a namespace fd to program (tests).
	NetNS int

	mu    sync.Mutex
	known map[string]string // device -> chain; nil: read the kernel
	// Transactions counts netlink batches sent (tests and benchmarks).
	Transactions int
}

// New returns an applier for the current network namespace.
func New() *Guard { return &Guard{} }

func (g *Guard) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(bigBuffers)}
	if g.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(g.NetNS))
	}
	return nftables.New(opts...)
}

// bigBuffers raises the socket's buffers past the sysctl limits (root):
// a batch's acknowledgements overflow the default receive buffer
// (ENOBUFS, though the kernel committed the batch).
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 8<<20); e != nil && serr == nil {
				serr = e
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

var table = &nftables.Table{Name: plan.GuardTable, Family: nftables.TableFamilyBridge}

// Apply makes the kernel's guard match want. full re-reads the kernel.
// With no port to guard, the table goes.
func (g *Guard) Apply(want plan.L2Guard, full bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, err := g.conn()
	if err != nil {
		return err
	}
	if g.known == nil || full {
		if g.known, err = g.read(c); err != nil {
			g.known = nil
			return err
		}
	}
	if want.IsZero() {
		if _, present := g.known[""]; !present {
			return nil
		}
		c.DelTable(table)
		if err := g.flush(c); err != nil {
			return err
		}
		g.known = map[string]string{}
		return nil
	}
	var m *nftables.Set
	ops := 0 // messages queued since the last flush
	if _, present := g.known[""]; !present {
		m = g.createTable(c)
		ops++
	} else {
		m = portMap()
	}
	wantChain := make(map[string]string, len(want.Ports))
	for _, p := range want.Ports {
		wantChain[p.Device] = p.GuardChainName()
	}
	// Map elements that go or move first, then stale chains, then new
	// ports in chunks: each chunk is whole ports, so no port is ever
	// half programmed.
	var dels []nftables.SetElement
	for dev, ch := range g.known {
		if dev == "" || strings.HasPrefix(dev, "\x00") {
			continue
		}
		if wantChain[dev] != ch {
			dels = append(dels, nftables.SetElement{Key: ifname(dev)})
		}
	}
	if len(dels) > 0 {
		if err := c.SetDeleteElements(m, dels); err != nil {
			return err
		}
		ops++
	}
	live := map[string]bool{}
	for _, ch := range wantChain {
		live[ch] = true
	}
	for key, ch := range g.known {
		if strings.HasPrefix(key, "\x00") && !live[ch] {
			pc := &nftables.Chain{Name: ch, Table: table}
			c.FlushChain(pc)
			c.DelChain(pc)
			ops++
		}
	}
	pending := 0
	for _, p := range want.Ports {
		if g.known[p.Device] == wantChain[p.Device] {
			continue
		}
		if !g.hasChain(wantChain[p.Device]) {
			addPortChain(c, p)
		}
		if err := c.SetAddElements(m, []nftables.SetElement{{Key: ifname(p.Device),
			VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: wantChain[p.Device]}}}); err != nil {
			return err
		}
		ops++
		if pending++; pending == batchPorts {
			if err := g.flush(c); err != nil {
				return err
			}
			pending, ops = 0, 0
		}
	}
	if ops > 0 {
		if err := g.flush(c); err != nil {
			return err
		}
	}
	next := map[string]string{"": ""}
	for dev, ch := range wantChain {
		next[dev] = ch
		next["\x00"+ch] = ch
	}
	g.known = next
	return nil
}

func (g *Guard) hasChain(name string) bool {
	_, ok := g.known["\x00"+name]
	return ok
}

// flush sends the batch. On an error the kernel may still have committed
// it (ENOBUFS after a large batch): the next sync re-reads instead of
// trusting either outcome.
func (g *Guard) flush(c *nftables.Conn) error {
	g.Transactions++
	if err := c.Flush(); err != nil {
		g.known = nil
		return fmt.Errorf("netlink transaction: %w", err)
	}
	return nil
}

func portMap() *nftables.Set {
	// Host byte order tells nft how to print the ifname keys.
	return &nftables.Set{Table: table, Name: plan.GuardPortMap, IsMap: true, KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict,
		KeyByteOrder: binaryutil.NativeEndian}
}

// createTable adds the table, the ethertype set, the port map and the
// base chain with its one rule, in the pending batch.
func (g *Guard) createTable(c *nftables.Conn) *nftables.Set {
	c.AddTable(table)
	types := &nftables.Set{Table: table, Name: ethertypeSet, KeyType: nftables.TypeEtherType}
	_ = c.AddSet(types, []nftables.SetElement{{Key: be16(unix.ETH_P_IP)}, {Key: be16(unix.ETH_P_ARP)}, {Key: be16(unix.ETH_P_IPV6)}})
	m := portMap()
	_ = c.AddSet(m, nil)
	prio := nftables.ChainPriority(-300)
	base := c.AddChain(&nftables.Chain{Name: plan.GuardBaseChain, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: &prio, Policy: policyAccept()})
	c.AddRule(&nftables.Rule{Table: table, Chain: base, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: m.Name, SetID: m.ID},
	}})
	return m
}

func policyAccept() *nftables.ChainPolicy {
	p := nftables.ChainPolicyAccept
	return &p
}

// read lists the owned table: "" marks that it exists, a device key maps
// to the chain its element jumps to, "\x00"+chain marks an existing port
// chain.
func (g *Guard) read(c *nftables.Conn) (map[string]string, error) {
	known := map[string]string{}
	if _, err := c.ListTableOfFamily(plan.GuardTable, nftables.TableFamilyBridge); err != nil {
		if isNotExist(err) {
			return known, nil
		}
		return nil, fmt.Errorf("l2 guard: list table bridge %s: %w", plan.GuardTable, err)
	}
	known[""] = ""
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return nil, fmt.Errorf("l2 guard: list chains: %w", err)
	}
	base := false
	for _, ch := range chains {
		if ch.Table.Name != plan.GuardTable {
			continue
		}
		if ch.Name == plan.GuardBaseChain {
			base = true
		} else {
			known["\x00"+ch.Name] = ch.Name
		}
	}
	m, err := c.GetSetByName(table, plan.GuardPortMap)
	if err != nil || !base {
		// Half a table (someone deleted parts): rebuild it whole.
		c.DelTable(table)
		if err := g.flush(c); err != nil {
			return nil, err
		}
		return map[string]string{}, nil
	}
	elems, err := c.GetSetElements(m)
	if err != nil {
		return nil, fmt.Errorf("l2 guard: list map %s: %w", plan.GuardPortMap, err)
	}
	for _, e := range elems {
		if ch := jumpChain(e); ch != "" {
			known[string(bytes.TrimRight(e.Key, "\x00"))] = ch
		}
	}
	return known, nil
}

// jumpChain is the chain a verdict map element jumps to. This version of
// the library leaves the verdict undecoded in Val: NFTA_VERDICT_CODE and
// NFTA_VERDICT_CHAIN attributes.
func jumpChain(e nftables.SetElement) string {
	if e.VerdictData != nil {
		return e.VerdictData.Chain
	}
	ad, err := netlink.NewAttributeDecoder(e.Val)
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_VERDICT_CHAIN {
			return strings.TrimRight(string(ad.Bytes()), "\x00")
		}
	}
	return ""
}

func isNotExist(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such file") || strings.Contains(err.Error(), "not exist"))
}

// addPortChain adds a port's chain with its drops (plan.GuardPort.GuardRules,
// in the same order).
func addPortChain(c *nftables.Conn, p plan.GuardPort) {
	ch := c.AddChain(&nftables.Chain{Name: p.GuardChainName(), Table: table})
	ip := p.IPv4.As4()
	zero := []byte{0, 0, 0, 0}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	ll := func(off, n uint32) expr.Any {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: off, Len: n}
	}
	nh := func(off, n uint32) expr.Any {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
	}
	th := func(off, n uint32) expr.Any {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}
	}
	eq := func(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
	ne := func(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: b} }
	etherType := func(t uint16) []expr.Any { return []expr.Any{ll(12, 2), eq(be16(t))} }
	l4 := func(proto byte) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto})}
	}
	ipv4, arp, ipv6 := etherType(unix.ETH_P_IP), etherType(unix.ETH_P_ARP), etherType(unix.ETH_P_IPV6)
	rules := [][]expr.Any{
		{ll(6, 6), ne(p.MAC[:])},
		{ll(12, 2), &expr.Lookup{SourceRegister: 1, SetName: ethertypeSet, Invert: true}},
		join(ipv4, nh(12, 4), ne(zero), ne(ip[:])),
		join(ipv4, nh(12, 4), eq(zero), &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, ne([]byte{unix.IPPROTO_UDP})),
		join(ipv4, nh(12, 4), eq(zero), l4(unix.IPPROTO_UDP), th(0, 2), ne(be16(68))),
		join(ipv4, nh(12, 4), eq(zero), l4(unix.IPPROTO_UDP), th(2, 2), ne(be16(67))),
		join(ipv4, l4(unix.IPPROTO_UDP), th(0, 2), eq(be16(67))),
		join(arp, nh(0, 2), ne(be16(1))),
		join(arp, nh(2, 2), ne(be16(unix.ETH_P_IP))),
		join(arp, nh(4, 1), ne([]byte{6})),
		join(arp, nh(5, 1), ne([]byte{4})),
		join(arp, nh(8, 6), ne(p.MAC[:])),
		join(arp, nh(14, 4), ne(zero), ne(ip[:])),
		join(ipv6, l4(unix.IPPROTO_ICMPV6), th(0, 1), eq([]byte{134})),
		join(ipv6, l4(unix.IPPROTO_UDP), th(0, 2), eq(be16(547))),
	}
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: append(r, drop)})
	}
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
	known, err := g.read(c)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range known {
		if k != "" && !strings.HasPrefix(k, "\x00") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}
