// Package nftables is the nftables firewall driver: it programs the
// planner's rule model, laid out by plan.Firewall.NFTables, into
// novanet's own tables "ip novanet-filter" and "ip novanet-nat"
// in-process over netlink (github.com/google/nftables; no nft process).
// It owns only those two tables; iptables' tables and every other nft
// table are left alone.
//
// A sync diffs against what the kernel holds (read back on a full sync):
// set elements are added and deleted one by one, a chain whose rules
// differ is flushed and refilled, and a sync with nothing changed sends
// nothing. Rules carry a fingerprint of their text in their user data, so
// a read compares fingerprints rather than decoding expressions.
package nftables

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"novanet/internal/datapath/nfconn"
	"novanet/internal/plan"
)

// ManagedTables returns novanet's nftables tables (family ip), a new
// slice each call so no caller can change what the others manage.
func ManagedTables() []string {
	return []string{plan.NFTTableName("filter"), plan.NFTTableName("nat")}
}

// batchElements bounds the elements of one netlink message, so a large
// first sync stays within message limits.
const batchElements = 1000

// Firewall is the applier. Call New.
type Firewall struct {
	// NetNS, when non-zero, is a namespace fd to program (tests).
	NetNS int
	// Netns, when set, names the namespace Watch listens in (tests).
	Netns string

	mu    sync.Mutex
	known map[string]*kernelTable // nil: read the kernel
	// transactions counts netlink batches sent (Transactions).
	transactions atomic.Int64
	changes      []string
	// lasting is the netlink connection kept between syncs (opening one
	// in another namespace costs more than a small transaction).
	lasting nfconn.Lasting
}

// kernelTable is one managed table as last read or written.
type kernelTable struct {
	chains map[string]kernelChain
	sets   map[string][]netip.Addr // sorted
}

type kernelChain struct {
	base  string   // "type hook priority" of a base chain, "" for a regular one
	rules []string // fingerprints, in order
}

// New returns an applier for the current network namespace.
func New() *Firewall { return &Firewall{} }

// TakeChanges returns what the syncs since the last call changed.
func (f *Firewall) TakeChanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.changes
	f.changes = nil
	return out
}

// conn returns the kept connection, opening it on first use.
func (f *Firewall) conn() (*nftables.Conn, error) { return f.lasting.Get(f.NetNS) }

// dropConn closes the kept connection after a failure, so the next sync
// starts on a fresh socket (no stale acknowledgements or batch).
func (f *Firewall) dropConn() { f.lasting.Drop() }

// wantTable is a planned table with each rule's text and fingerprint.
type wantTable struct {
	plan.NFTTable
	texts [][]string // per chain, per rule
	state *kernelTable
}

func compile(nt plan.NFTTable) wantTable {
	w := wantTable{NFTTable: nt, texts: make([][]string, len(nt.Chains)),
		state: &kernelTable{chains: make(map[string]kernelChain, len(nt.Chains)), sets: make(map[string][]netip.Addr, len(nt.Sets))}}
	for i, c := range nt.Chains {
		kc := kernelChain{base: baseOf(c), rules: make([]string, len(c.Rules))}
		w.texts[i] = make([]string, len(c.Rules))
		for j, r := range c.Rules {
			w.texts[i][j] = r.Text()
			kc.rules[j] = string(fingerprint(w.texts[i][j]))
		}
		w.state.chains[c.Name] = kc
	}
	for _, s := range nt.Sets {
		w.state.sets[s.Name] = s.Elements
	}
	return w
}

func baseOf(c plan.NFTChain) string {
	if c.Hook == "" {
		return ""
	}
	return fmt.Sprintf("%s %s %d", c.Type, c.Hook, c.Priority)
}

// Apply makes novanet's tables match fw. full re-reads the kernel first,
// so a deleted element, flushed chain or dropped table is repaired.
func (f *Firewall) Apply(_ context.Context, fw plan.Firewall, full bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[string]wantTable{}
	for _, nt := range fw.NFTables() {
		want[nt.Name] = compile(nt)
	}
	for _, t := range fw.Tables {
		if t.Name != "filter" && t.Name != "nat" {
			return fmt.Errorf("table %s is not managed by novanet", t.Name)
		}
	}
	c, err := f.conn()
	if err != nil {
		if len(want) == 0 {
			return nil // nothing to program: a host without nf_tables needs none
		}
		return fmt.Errorf("open nftables netlink: %w", err)
	}
	if f.known == nil || full {
		if f.known, err = f.read(c); err != nil {
			f.known = nil
			f.dropConn()
			if len(want) == 0 {
				return nil
			}
			return err
		}
	}
	var errs []string
	for _, name := range ManagedTables() {
		w, ok := want[name]
		if c, err = f.conn(); err != nil {
			errs = append(errs, err.Error())
			break
		}
		if err := f.applyTable(c, name, w, ok); err != nil {
			// Whatever was queued before the error must not ride on the
			// next batch: a fresh connection has nothing queued.
			f.dropConn()
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (f *Firewall) applyTable(c *nftables.Conn, name string, w wantTable, wanted bool) error {
	cur := f.known[name]
	table := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	if !wanted {
		if cur == nil {
			return nil
		}
		c.DelTable(table)
		if err := f.commit(c, name, nil); err != nil {
			return err
		}
		f.note("table " + name + ": no longer planned: deleted")
		return nil
	}
	ops, what := 0, []string{}
	if cur == nil {
		c.AddTable(table)
		cur = &kernelTable{chains: map[string]kernelChain{}, sets: map[string][]netip.Addr{}}
		ops++
		what = append(what, "table missing")
	}
	sets := map[string]*nftables.Set{}
	var newSets, elemSets []string
	for _, s := range w.Sets {
		set := &nftables.Set{Table: table, Name: s.Name, KeyType: nftables.TypeIPAddr}
		sets[s.Name] = set
		have, ok := cur.sets[s.Name]
		if !ok {
			if err := f.lasting.AddSet(c, set, nil); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
			newSets = append(newSets, s.Name)
			have = nil
		}
		add, del := diffAddrs(have, s.Elements)
		if len(add)+len(del) == 0 {
			continue
		}
		if err := elements(c.SetDeleteElements, set, del); err != nil {
			return err
		}
		if err := elements(c.SetAddElements, set, add); err != nil {
			return err
		}
		if ok {
			elemSets = append(elemSets, fmt.Sprintf("%s (+%d -%d)", s.Name, len(add), len(del)))
		}
		ops++
	}
	chains := map[string]*nftables.Chain{}
	var changed []int
	for i, ch := range w.Chains {
		nc := &nftables.Chain{Name: ch.Name, Table: table}
		chains[ch.Name] = nc
		wk := w.state.chains[ch.Name]
		have, ok := cur.chains[ch.Name]
		switch {
		case ok && have.base == wk.base && slices.Equal(have.rules, wk.rules):
			continue
		case ok && have.base == wk.base:
			c.FlushChain(nc)
		case ok:
			c.FlushChain(nc)
			c.DelChain(nc)
			fallthrough
		default:
			if ch.Hook != "" {
				hook, prio := hookOf(ch.Hook), nftables.ChainPriority(ch.Priority)
				policy := nftables.ChainPolicyAccept
				nc.Hooknum, nc.Priority, nc.Policy = hook, &prio, &policy
				nc.Type = nftables.ChainTypeFilter
				if ch.Type == "nat" {
					nc.Type = nftables.ChainTypeNAT
				}
			}
			c.AddChain(nc)
		}
		changed = append(changed, i)
	}
	lookup := func(n string) *nftables.Set { return sets[n] }
	for _, i := range changed {
		ch := w.Chains[i]
		for j, r := range ch.Rules {
			ex, err := exprs(r, lookup)
			if err != nil {
				return fmt.Errorf("table %s chain %s: %w", name, ch.Name, err)
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: chains[ch.Name], Exprs: ex, UserData: userData(r, w.texts[i][j])})
		}
	}
	// Chains and sets no longer planned go last: the rules naming them
	// were rewritten above.
	var gone []string
	for n := range cur.chains {
		if _, ok := w.state.chains[n]; !ok {
			gone = append(gone, n)
		}
	}
	slices.Sort(gone)
	for _, n := range gone {
		c.FlushChain(&nftables.Chain{Name: n, Table: table})
	}
	for _, n := range gone {
		c.DelChain(&nftables.Chain{Name: n, Table: table})
	}
	var goneSets []string
	for n := range cur.sets {
		if _, ok := w.state.sets[n]; !ok {
			goneSets = append(goneSets, n)
			c.DelSet(&nftables.Set{Table: table, Name: n})
		}
	}
	slices.Sort(goneSets)
	ops += len(changed) + len(gone) + len(goneSets) + len(newSets)
	if ops == 0 {
		return nil
	}
	if err := f.commit(c, name, w.state); err != nil {
		return err
	}
	for _, part := range []struct {
		what  string
		names []string
	}{{"sets added", newSets}, {"elements changed", elemSets}, {"chains rewritten", chainNames(w, changed)}, {"chains removed", gone}, {"sets removed", goneSets}} {
		if len(part.names) > 0 {
			what = append(what, part.what+": "+strings.Join(part.names, ","))
		}
	}
	f.note("table " + name + ": " + strings.Join(what, "; "))
	return nil
}

func chainNames(w wantTable, idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = w.Chains[i].Name
	}
	return out
}

func (f *Firewall) note(s string) {
	if len(f.changes) < 16 {
		f.changes = append(f.changes, s)
	}
}

// Transactions is how many netlink batches this applier sent, failed
// ones included: the agent's firewall writes metric under the nftables
// driver, also how tests and benchmarks prove an unchanged plan writes
// nothing. Safe to call from any goroutine, during an Apply too.
func (f *Firewall) Transactions() int64 { return f.transactions.Load() }

// commit sends the batch. On an error the kernel may still have
// committed it (ENOBUFS on the acknowledgements of a large batch): the
// kernel is read again and only a table that differs from want is an
// error.
func (f *Firewall) commit(c *nftables.Conn, table string, want *kernelTable) error {
	f.transactions.Add(1)
	err := c.Flush()
	if err == nil {
		f.setKnown(table, want)
		return nil
	}
	f.dropConn()
	c, cerr := f.conn()
	if cerr == nil {
		if got, rerr := f.read(c); rerr == nil && sameTable(got[table], want) {
			f.known = got
			return nil
		}
	}
	f.known = nil
	return fmt.Errorf("netlink transaction on table %s: %w", table, err)
}

func (f *Firewall) setKnown(table string, st *kernelTable) {
	if st == nil {
		delete(f.known, table)
	} else {
		f.known[table] = st
	}
}

func sameTable(a, b *kernelTable) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.chains) != len(b.chains) || len(a.sets) != len(b.sets) {
		return false
	}
	for n, c := range a.chains {
		o, ok := b.chains[n]
		if !ok || o.base != c.base || !slices.Equal(o.rules, c.rules) {
			return false
		}
	}
	for n, s := range a.sets {
		o, ok := b.sets[n]
		if !ok || !slices.Equal(o, s) {
			return false
		}
	}
	return true
}

// diffAddrs: what to add to have to get want, and what to delete (both
// sorted IPv4 lists).
func diffAddrs(have, want []netip.Addr) (add, del []netip.Addr) {
	key := func(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want):
			del = append(del, have[i])
			i++
		case i == len(have):
			add = append(add, want[j])
			j++
		default:
			h, w := key(have[i]), key(want[j])
			switch {
			case h < w:
				del = append(del, have[i])
				i++
			case w < h:
				add = append(add, want[j])
				j++
			default:
				i, j = i+1, j+1
			}
		}
	}
	return add, del
}

func elements(op func(*nftables.Set, []nftables.SetElement) error, s *nftables.Set, addrs []netip.Addr) error {
	for len(addrs) > 0 {
		chunk := addrs[:min(len(addrs), batchElements)]
		addrs = addrs[len(chunk):]
		el := make([]nftables.SetElement, len(chunk))
		for i, a := range chunk {
			b := a.As4()
			el[i] = nftables.SetElement{Key: b[:]}
		}
		if err := op(s, el); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	return nil
}

func hookOf(h string) *nftables.ChainHook {
	switch h {
	case "prerouting":
		return nftables.ChainHookPrerouting
	case "input":
		return nftables.ChainHookInput
	case "forward":
		return nftables.ChainHookForward
	case "output":
		return nftables.ChainHookOutput
	}
	return nftables.ChainHookPostrouting
}

func hookName(h *nftables.ChainHook) string {
	if h == nil {
		return ""
	}
	for _, n := range []string{"prerouting", "input", "forward", "output", "postrouting"} {
		if *hookOf(n) == *h {
			return n
		}
	}
	return fmt.Sprintf("hook%d", *h)
}

// read lists the managed tables the kernel holds. A table or chain that
// vanishes between two dumps (someone deleting it as we read) makes it
// read again.
func (f *Firewall) read(c *nftables.Conn) (map[string]*kernelTable, error) {
	for try := 0; ; try++ {
		k, err := f.readOnce(c)
		if err == nil || try == 3 || !(errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), unix.ENOENT.Error())) {
			return k, err
		}
	}
}

func (f *Firewall) readOnce(c *nftables.Conn) (map[string]*kernelTable, error) {
	out := map[string]*kernelTable{}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: %w; is nf_tables available and are we root?", err)
	}
	var chains []*nftables.Chain
	for _, t := range tables {
		if !slices.Contains(ManagedTables(), t.Name) {
			continue
		}
		if chains == nil {
			if chains, err = c.ListChainsOfTableFamily(nftables.TableFamilyIPv4); err != nil {
				return nil, fmt.Errorf("list chains: %w", err)
			}
		}
		kt := &kernelTable{chains: map[string]kernelChain{}, sets: map[string][]netip.Addr{}}
		for _, ch := range chains {
			if ch.Table.Name != t.Name {
				continue
			}
			rules, err := c.GetRules(t, ch)
			if err != nil {
				return nil, fmt.Errorf("list chain %s %s: %w", t.Name, ch.Name, err)
			}
			kc := kernelChain{rules: make([]string, len(rules))}
			if ch.Hooknum != nil && ch.Priority != nil {
				typ := string(ch.Type)
				kc.base = fmt.Sprintf("%s %s %d", typ, hookName(ch.Hooknum), int(*ch.Priority))
				if ch.Policy != nil && *ch.Policy != nftables.ChainPolicyAccept {
					kc.base += " policy drop" // never what is planned: rebuilt
				}
			}
			for i, r := range rules {
				kc.rules[i] = fingerprintOf(r.UserData)
			}
			kt.chains[ch.Name] = kc
		}
		sets, err := c.GetSets(t)
		if err != nil {
			return nil, fmt.Errorf("list sets of %s: %w", t.Name, err)
		}
		for _, s := range sets {
			el, err := c.GetSetElements(s)
			if err != nil {
				return nil, fmt.Errorf("list set %s: %w", s.Name, err)
			}
			addrs := make([]netip.Addr, 0, len(el))
			for _, e := range el {
				if len(e.Key) == 4 && !e.IntervalEnd {
					addrs = append(addrs, netip.AddrFrom4([4]byte(e.Key)))
				}
			}
			slices.SortFunc(addrs, netip.Addr.Compare)
			kt.sets[s.Name] = addrs
		}
		out[t.Name] = kt
	}
	return out, nil
}

// Listing returns what `nft list table` shows of the managed tables, in
// the form kernel reads give (tests and doctor): chain names with their
// rule counts and set names with their elements.
func (f *Firewall) Listing() (map[string][]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.conn()
	if err != nil {
		return nil, err
	}
	k, err := f.read(c)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for name, t := range k {
		var lines []string
		for n, ch := range t.chains {
			lines = append(lines, fmt.Sprintf("chain %s %d rules", n, len(ch.rules)))
		}
		for n, s := range t.sets {
			el := make([]string, len(s))
			for i, a := range s {
				el[i] = a.String()
			}
			lines = append(lines, "set "+n+" { "+strings.Join(el, ", ")+" }")
		}
		slices.Sort(lines)
		out[name] = lines
	}
	return out, nil
}

// ApplyChange applies an incremental plan change (plan.Update) as set
// elements in one transaction: an instance that comes or goes is its
// address in the set of the shared chain its rules fold into, a member is
// an element of its group's set. It trusts what was applied last for the
// rest; a change it cannot express as elements (a shape of chain not
// programmed yet, a shared chain left empty, nothing known) is applied by
// comparing the whole of fw instead (Apply). An instance that leaves
// first among like ones can leave the shared chains' jumps in an order
// the layout would not choose; the sets are disjoint, so the order does
// not change what a packet meets, and the next whole sync rewrites it.
func (f *Firewall) ApplyChange(ctx context.Context, fw plan.Firewall, ch plan.Change) error {
	if ch.Full {
		return f.Apply(ctx, fw, false)
	}
	if ch.Chains.IsZero() && len(ch.Sets) == 0 {
		return nil
	}
	f.mu.Lock()
	done, err := f.applyElements(ch)
	f.mu.Unlock()
	if err != nil || !done {
		return f.Apply(ctx, fw, false)
	}
	return nil
}

func (f *Firewall) applyElements(ch plan.Change) (bool, error) {
	name := plan.NFTTableName("filter")
	cur := f.known[name]
	if cur == nil {
		return false, nil
	}
	// Set name -> elements to delete and add.
	type edit struct{ del, add []netip.Addr }
	edits := map[string]*edit{}
	editOf := func(set string) *edit {
		e := edits[set]
		if e == nil {
			e = &edit{}
			edits[set] = e
		}
		return e
	}
	folded := map[*plan.Rule]string{}
	foldedOf := func(rules []plan.Rule) (string, bool) {
		if len(rules) == 0 {
			return "", false
		}
		n, ok := folded[&rules[0]]
		if !ok {
			n = plan.NFTInstanceChain(rules)
			folded[&rules[0]] = n
		}
		_, programmed := cur.chains[n]
		_, hasSet := cur.sets[n]
		_, otherRun := cur.sets[n+"-1"]
		return n, programmed && hasSet && !otherRun
	}
	for _, c := range ch.Chains.Removed {
		n, ok := foldedOf(c.Rules)
		if !ok {
			return false, nil
		}
		editOf(n).del = append(editOf(n).del, c.Address)
	}
	for _, c := range ch.Chains.Added {
		n, ok := foldedOf(c.Rules)
		if !ok {
			return false, nil
		}
		e := editOf(n)
		if i := slices.Index(e.del, c.Address); i >= 0 {
			e.del = slices.Delete(e.del, i, i+1) // replaced by a like chain: nothing to do
			continue
		}
		e.add = append(e.add, c.Address)
	}
	for _, sc := range ch.Sets {
		if _, ok := cur.sets[sc.Name]; !ok {
			return false, nil
		}
		e := editOf(sc.Name)
		e.del = append(e.del, sc.Removed...)
		e.add = append(e.add, sc.Added...)
	}
	next := &kernelTable{chains: cur.chains, sets: make(map[string][]netip.Addr, len(cur.sets))}
	for n, s := range cur.sets {
		next.sets[n] = s
	}
	for n, e := range edits {
		if len(e.del)+len(e.add) == 0 {
			continue
		}
		// Only what the set lacks or holds: deleting an absent element
		// fails the whole transaction.
		members := slices.Clone(cur.sets[n])
		del, add := e.del[:0], e.add[:0]
		for _, a := range e.del {
			if i, ok := slices.BinarySearchFunc(members, a, plan.CompareIPv4); ok {
				members = slices.Delete(members, i, i+1)
				del = append(del, a)
			}
		}
		for _, a := range e.add {
			if i, ok := slices.BinarySearchFunc(members, a, plan.CompareIPv4); !ok {
				members = slices.Insert(members, i, a)
				add = append(add, a)
			}
		}
		e.del, e.add = del, add
		if len(members) == 0 && cur.chains[n].rules != nil {
			return false, nil // a shared chain left without instances goes: the layout decides
		}
		next.sets[n] = members
	}
	c, err := f.conn()
	if err != nil {
		return false, err
	}
	table := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	ops := 0
	for n, e := range edits {
		set := &nftables.Set{Table: table, Name: n, KeyType: nftables.TypeIPAddr}
		if err := elements(c.SetDeleteElements, set, e.del); err != nil {
			f.dropConn()
			return false, err
		}
		if err := elements(c.SetAddElements, set, e.add); err != nil {
			f.dropConn()
			return false, err
		}
		ops += len(e.del) + len(e.add)
	}
	if ops == 0 {
		return true, nil
	}
	if err := f.commit(c, name, next); err != nil {
		return false, err
	}
	return true, nil
}
