package nftables

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"novanet/internal/plan"
)

// exprs compiles one rule into nftables expressions, in the order
// plan.NFTRule.Text renders its matches. sets resolves a set name to the
// set of the pending batch.
func exprs(r plan.NFTRule, sets func(string) *nftables.Set) ([]expr.Any, error) {
	var out []expr.Any
	add := func(e ...expr.Any) { out = append(out, e...) }
	lookup := func(off uint32, name string) error {
		s := sets(name)
		if s == nil {
			return fmt.Errorf("set %s is not planned", name)
		}
		add(ip(off), &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID})
		return nil
	}
	if r.DaddrSet != "" {
		if err := lookup(16, r.DaddrSet); err != nil {
			return nil, err
		}
	}
	if r.Source.IsValid() && r.Source.Bits() > 0 {
		add(prefix(12, r.Source)...)
	}
	if r.Destination.IsValid() && r.Destination.Bits() > 0 {
		add(prefix(16, r.Destination)...)
	}
	if r.InInterface != "" {
		add(&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, ifname(r.InInterface))
	}
	if r.OutInterface != "" {
		add(&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, ifname(r.OutInterface))
	}
	if r.PhysdevIn != "" || r.PhysdevOut != "" {
		return nil, fmt.Errorf("rule %q matches bridge ports (physdev), which the nftables driver cannot express in family ip: use firewall_driver = iptables", r.Spec())
	}
	if r.Protocol != "" {
		proto, ok := map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "icmp": unix.IPPROTO_ICMP}[r.Protocol]
		if !ok {
			return nil, fmt.Errorf("rule %q: protocol %s is not one of tcp, udp, icmp", r.Spec(), r.Protocol)
		}
		add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto}))
		switch r.Protocol {
		case "tcp", "udp":
			if !r.SrcPorts.IsZero() {
				add(ports(0, r.SrcPorts)...)
			}
			if !r.DstPorts.IsZero() {
				add(ports(2, r.DstPorts)...)
			}
		case "icmp":
			if r.ICMPType != nil && *r.ICMPType >= 0 {
				add(th(0, 1), eq([]byte{byte(*r.ICMPType)}))
				if r.ICMPCode != nil && *r.ICMPCode >= 0 {
					add(th(1, 1), eq([]byte{byte(*r.ICMPCode)}))
				}
			}
		}
	}
	if r.SourceSet != "" {
		if err := lookup(12, r.SourceSet); err != nil {
			return nil, err
		}
	}
	if len(r.State) > 0 {
		e, err := ctMatch(r.State, false)
		if err != nil {
			return nil, err
		}
		add(e...)
	}
	if len(r.CTState) > 0 {
		e, err := ctMatch(r.CTState, r.CTStateNegate)
		if err != nil {
			return nil, err
		}
		add(e...)
	}
	v, err := verdict(r.Target)
	if err != nil {
		return nil, err
	}
	return append(out, v...), nil
}

func ip(off uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}
}

func th(off, n uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}
}

func eq(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }

func prefix(off uint32, p netip.Prefix) []expr.Any {
	a := p.Masked().Addr().As4()
	if p.IsSingleIP() {
		return []expr.Any{ip(off), eq(a[:])}
	}
	mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{ip(off), &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)}, eq(a[:])}
}

// ifname matches a whole name, or its stem for iptables' "eth+".
func ifname(name string) expr.Any {
	if stem, ok := strings.CutSuffix(name, "+"); ok {
		return eq([]byte(stem))
	}
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return eq(b)
}

func ports(off uint32, p plan.PortRange) []expr.Any {
	if p.To == 0 || p.To == p.From {
		return []expr.Any{th(off, 2), eq(be16(p.From))}
	}
	return []expr.Any{th(off, 2), &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be16(p.From), ToData: be16(p.To)}}
}

// Conntrack state bits (ct state) and NAT status bits (ct status).
var (
	ctStates   = map[string]uint32{"INVALID": 1, "ESTABLISHED": 2, "RELATED": 4, "NEW": 8, "UNTRACKED": 64}
	ctStatuses = map[string]uint32{"SNAT": 1 << 4, "DNAT": 1 << 5}
)

func ctMatch(names []string, negate bool) ([]expr.Any, error) {
	key, table := expr.CtKeySTATE, ctStates
	if plan.IsCTStatus(names[0]) {
		key, table = expr.CtKeySTATUS, ctStatuses
	}
	var bits uint32
	for _, n := range names {
		b, ok := table[n]
		if !ok {
			return nil, fmt.Errorf("conntrack state %s cannot be matched with the others given (%s) by the nftables driver", n, strings.Join(names, ","))
		}
		bits |= b
	}
	op := expr.CmpOpNeq
	if negate {
		op = expr.CmpOpEq
	}
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)},
	}, nil
}

func verdict(t plan.Target) ([]expr.Any, error) {
	switch t.Verdict {
	case plan.Accept:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, nil
	case plan.Drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	case plan.Return:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}, nil
	case plan.Goto:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: t.Chain}}, nil
	case plan.DNAT, plan.SNAT:
		if !t.ToAddr.Is4() {
			return nil, fmt.Errorf("%s needs an IPv4 address, got %s", t.Verdict, t.ToAddr)
		}
		a := t.ToAddr.As4()
		typ := expr.NATTypeDestNAT
		if t.Verdict == plan.SNAT {
			typ = expr.NATTypeSourceNAT
		}
		out := []expr.Any{&expr.Immediate{Register: 1, Data: a[:]}}
		nat := &expr.NAT{Type: typ, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}
		if t.ToPort != 0 {
			out = append(out, &expr.Immediate{Register: 2, Data: be16(t.ToPort)})
			nat.RegProtoMin, nat.Specified = 2, true
		}
		return append(out, nat), nil
	}
	return nil, fmt.Errorf("verdict %q has no nftables form", t.Verdict)
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// The rule's user data carries a fingerprint of its text (and its
// comment, as nft shows comments), so reading a chain back compares
// fingerprints instead of decoding expressions. A rule someone else adds
// or replaces has none or another, and the chain is rewritten.
const (
	udataComment     = 0    // NFTNL_UDATA_RULE_COMMENT
	udataFingerprint = 0x4e // novanet's own; nft skips types it does not know
)

func fingerprint(text string) []byte {
	h := fnv.New64a()
	h.Write([]byte(text))
	return h.Sum(nil)
}

func userData(r plan.NFTRule, text string) []byte {
	fp := fingerprint(text)
	b := append([]byte{udataFingerprint, byte(len(fp))}, fp...)
	if c := r.Comment; c != "" && len(c) < 250 {
		b = append(b, udataComment, byte(len(c)+1))
		b = append(append(b, c...), 0)
	}
	return b
}

// fingerprintOf reads the fingerprint from a rule's user data ("" when
// it has none).
func fingerprintOf(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if 2+n > len(ud) {
			return ""
		}
		if typ == udataFingerprint {
			return string(ud[2 : 2+n])
		}
		ud = ud[2+n:]
	}
	return ""
}
