package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// builtinOrder is the order iptables lists built-in chains in.
var builtinOrder = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

// Table returns the named table of the firewall, or nil.
func (f *Firewall) Table(name string) *Table {
	for i := range f.Tables {
		if f.Tables[i].Name == name {
			return &f.Tables[i]
		}
	}
	return nil
}

// OwnedChainNames lists the table's owned chains, sorted.
func (t Table) OwnedChainNames() []string {
	names := make([]string, 0, len(t.Chains))
	for _, c := range t.Chains {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}

// Chain returns the owned chain with that name, or nil.
func (t *Table) Chain(name string) *Chain {
	for i := range t.Chains {
		if t.Chains[i].Name == name {
			return &t.Chains[i]
		}
	}
	return nil
}

// Spec renders the rule's arguments after "-A <chain> " exactly as
// `iptables -S` and `iptables-save` print them, so text read back from the
// kernel compares equal to what was planned. Matches appear in a fixed
// order (addresses, interfaces, protocol, then modules) which is also the
// order iptables keeps them in when restored from this text.
func (r Rule) Spec() string {
	var b strings.Builder
	b.Grow(96) // most rules fit: one allocation instead of three or four
	add := func(s ...string) {
		for _, x := range s {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(x)
		}
	}
	if r.Source.IsValid() {
		add("-s", r.Source.Masked().String())
	}
	if r.Destination.IsValid() {
		add("-d", r.Destination.Masked().String())
	}
	if r.InInterface != "" {
		add("-i", r.InInterface)
	}
	if r.OutInterface != "" {
		add("-o", r.OutInterface)
	}
	if r.Protocol != "" {
		add("-p", r.Protocol)
		switch r.Protocol {
		case "tcp", "udp":
			if !r.SrcPorts.IsZero() || !r.DstPorts.IsZero() {
				add("-m", r.Protocol)
				if !r.SrcPorts.IsZero() {
					add("--sport", r.SrcPorts.String())
				}
				if !r.DstPorts.IsZero() {
					add("--dport", r.DstPorts.String())
				}
			}
		case "icmp":
			if r.ICMPType != nil && *r.ICMPType >= 0 {
				t := strconv.Itoa(*r.ICMPType)
				if r.ICMPCode != nil && *r.ICMPCode >= 0 {
					t += "/" + strconv.Itoa(*r.ICMPCode)
				}
				add("-m", "icmp", "--icmp-type", t)
			}
		}
	}
	if r.PhysdevIn != "" || r.PhysdevOut != "" {
		add("-m", "physdev")
		if r.PhysdevIn != "" {
			add("--physdev-in", r.PhysdevIn)
		}
		if r.PhysdevOut != "" {
			add("--physdev-out", r.PhysdevOut)
		}
	}
	if r.SourceSet != "" {
		add("-m", "set", "--match-set", r.SourceSet, "src")
	}
	if len(r.State) > 0 {
		add("-m", "state", "--state", strings.Join(r.State, ","))
	}
	if len(r.CTState) > 0 {
		add("-m", "conntrack")
		if r.CTStateNegate {
			add("!")
		}
		add("--ctstate", strings.Join(r.CTState, ","))
	}
	if r.Comment != "" {
		add("-m", "comment", "--comment", quoteComment(r.Comment))
	}
	add(r.Target.spec()...)
	return b.String()
}

func (t Target) spec() []string {
	switch t.Verdict {
	case Goto:
		return []string{"-j", t.Chain}
	case DNAT:
		to := t.ToAddr.String()
		if t.ToPort != 0 {
			to += ":" + strconv.Itoa(int(t.ToPort))
		}
		return []string{"-j", "DNAT", "--to-destination", to}
	case SNAT:
		to := t.ToAddr.String()
		if t.ToPort != 0 {
			to += ":" + strconv.Itoa(int(t.ToPort))
		}
		return []string{"-j", "SNAT", "--to-source", to}
	default:
		return []string{"-j", string(t.Verdict)}
	}
}

// quoteComment quotes a comment the way iptables-save does when it holds
// anything but plain characters.
func quoteComment(c string) string {
	if c != "" && strings.IndexFunc(c, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':' || r == '/')
	}) < 0 {
		return c
	}
	return strconv.Quote(c)
}

// String renders the range as iptables does ("80", "1000:2000").
func (p PortRange) String() string {
	if p.To == 0 || p.To == p.From {
		return strconv.Itoa(int(p.From))
	}
	return fmt.Sprintf("%d:%d", p.From, p.To)
}

// JumpSpec is the rule text of a jump ("-j nova-filter-top").
func (j Jump) Spec() string { return "-j " + j.To }

// Listing renders the table the way `iptables -t <table> -S` lists it,
// restricted to what novanet owns: "-N" for each owned chain (sorted),
// then the jumps in built-in chain order, then each owned chain's rules.
func (t Table) Listing() []string {
	var out []string
	names := t.OwnedChainNames()
	for _, n := range names {
		out = append(out, "-N "+n)
	}
	builtins := slices.Clone(builtinOrder[t.Name])
	for _, j := range t.Jumps {
		if !slices.Contains(builtins, j.From) {
			builtins = append(builtins, j.From)
		}
	}
	for _, b := range builtins {
		for _, j := range t.Jumps {
			if j.From == b {
				out = append(out, "-A "+b+" "+j.Spec())
			}
		}
	}
	for _, n := range names {
		for _, r := range t.Chain(n).Rules {
			out = append(out, "-A "+n+" "+r.Spec())
		}
	}
	return out
}

// RestoreText renders an iptables-restore --noflush input that replaces
// the listed owned chains of the table (declaring a chain flushes it) and
// fills them. Jumps are not included: the applier owns their placement.
func (t Table) RestoreText(chains []string) string {
	var b strings.Builder
	b.WriteString("*" + t.Name + "\n")
	for _, n := range chains {
		b.WriteString(":" + n + " - [0:0]\n")
	}
	for _, n := range chains {
		c := t.Chain(n)
		if c == nil {
			continue
		}
		for _, r := range c.Rules {
			b.WriteString("-A " + n + " " + r.Spec() + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
