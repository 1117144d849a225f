// Package iptables applies the planner's rule model to the kernel with
// iptables-restore --noflush. It owns only chains named nova-* and the
// jump rules into them from the built-in chains; every other rule and
// chain on the host is left exactly as it is. A sync where nothing
// differs runs no iptables command at all.
package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"novanet/internal/datapath/runner"
	"novanet/internal/plan"
)

// OwnedPrefix marks chains this applier owns (nova's names).
const OwnedPrefix = "nova-"

// managedTables are the tables novanet writes; a table the plan no
// longer mentions still has its owned chains removed.
var managedTables = []string{"filter", "nat"}

// Firewall is the applier. Its zero value is not usable; call New.
type Firewall struct {
	// Netns, when set, runs every command inside that named network
	// namespace (tests); the agent runs inside its host's namespace and
	// leaves it empty.
	Netns string
	// Runner runs iptables-save and iptables-restore (runner.Exec in
	// Netns when nil).
	Runner runner.Runner

	mu    sync.Mutex
	known map[string]*tableState // table -> what the kernel holds, as far as we know
	// restores counts iptables-restore runs (Restores).
	restores atomic.Int64
	// changes describes the restores since TakeChanges.
	changes []string
}

// Restores is how many iptables-restore runs this applier made, failed
// ones included: the agent's firewall writes metric, also how tests and
// benchmarks prove an unchanged plan writes nothing. Safe to call from
// any goroutine, during an Apply too.
func (f *Firewall) Restores() int64 { return f.restores.Load() }

// TakeChanges returns what the restores since the last call changed
// (what differed, what was done).
func (f *Firewall) TakeChanges() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.changes
	f.changes = nil
	return out
}

// describeFix says what a restore of one table repairs.
func describeFix(table string, cur *tableState, changed, removed, jumpFix []string) string {
	var parts []string
	var missing, differ []string
	for _, n := range changed {
		if _, ok := cur.chains[n]; ok {
			differ = append(differ, n)
		} else {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		parts = append(parts, "chains missing: "+strings.Join(missing, ","))
	}
	if len(differ) > 0 {
		parts = append(parts, "chains differing: "+strings.Join(differ, ","))
	}
	if len(removed) > 0 {
		parts = append(parts, "chains no longer planned: "+strings.Join(removed, ","))
	}
	if len(jumpFix) > 0 {
		parts = append(parts, "jumps missing or not first in: "+strings.Join(jumpFix, ","))
	}
	return "table " + table + ": " + strings.Join(parts, "; ") + ": restored"
}

// tableState is the owned part of one table as last read or written.
type tableState struct {
	chains map[string][]string // owned chain -> its rule specs, in order
	// builtin chain -> all its rule specs, ours and others', in order.
	builtin map[string][]string
}

// ownJumps lists the owned chains a built-in chain's rules jump to.
func ownJumps(rules []string) []string {
	var out []string
	for _, r := range rules {
		if to, ok := jumpTarget(r); ok {
			out = append(out, to)
		}
	}
	return out
}

func jumpTarget(spec string) (string, bool) {
	to, ok := strings.CutPrefix(spec, "-j ")
	if ok && strings.HasPrefix(to, OwnedPrefix) && !strings.Contains(to, " ") {
		return to, true
	}
	return "", false
}

// jumpsInPlace: the chain starts with exactly the wanted jumps, in order,
// and holds no other jump into an owned chain.
func jumpsInPlace(rules, want []string) bool {
	if len(rules) < len(want) {
		return false
	}
	for i, to := range want {
		if rules[i] != "-j "+to {
			return false
		}
	}
	return len(ownJumps(rules[len(want):])) == 0
}

// New returns a Firewall acting on the current network namespace.
func New() *Firewall { return &Firewall{known: map[string]*tableState{}} }

func (f *Firewall) run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	if f.Runner != nil {
		return f.Runner.Run(ctx, stdin, name, args...)
	}
	return runner.Exec{Netns: f.Netns}.Run(ctx, stdin, name, args...)
}

// Apply makes the owned chains and jumps of every managed table match fw.
// full re-reads the kernel instead of trusting what was applied last, so
// a flushed or deleted chain is repaired.
func (f *Firewall) Apply(ctx context.Context, fw plan.Firewall, full bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []string
	for _, name := range managedTables {
		want := plan.Table{Name: name}
		if t := fw.Table(name); t != nil {
			want = *t
		}
		if err := f.applyTable(ctx, want, full); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, t := range fw.Tables {
		if !slices.Contains(managedTables, t.Name) {
			errs = append(errs, fmt.Sprintf("table %s is not managed by novanet", t.Name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (f *Firewall) applyTable(ctx context.Context, want plan.Table, full bool) error {
	cur := f.known[want.Name]
	if cur == nil || full {
		var err error
		if cur, err = f.read(ctx, want.Name); err != nil {
			delete(f.known, want.Name)
			return err
		}
		f.known[want.Name] = cur
	}

	wantChains := map[string][]string{}
	// The planner shares one rule slice among like instance chains:
	// render each shared slice once (read only from here on).
	rendered := map[*plan.Rule][]string{}
	for _, c := range want.Chains {
		if len(c.Rules) > 0 {
			if specs, ok := rendered[&c.Rules[0]]; ok && len(specs) == len(c.Rules) {
				wantChains[c.Name] = specs
				continue
			}
		}
		specs := make([]string, len(c.Rules))
		for i, r := range c.Rules {
			specs[i] = r.Spec()
		}
		if len(c.Rules) > 0 {
			rendered[&c.Rules[0]] = specs
		}
		wantChains[c.Name] = specs
	}
	wantJumps := map[string][]string{}
	var builtins []string
	for _, j := range want.Jumps {
		if _, ok := wantJumps[j.From]; !ok {
			builtins = append(builtins, j.From)
		}
		wantJumps[j.From] = append(wantJumps[j.From], j.To)
	}
	for b, rules := range cur.builtin {
		if !slices.Contains(builtins, b) && len(ownJumps(rules)) > 0 {
			builtins = append(builtins, b)
		}
	}
	slices.Sort(builtins)

	var changed, removed []string
	for _, name := range want.OwnedChainNames() {
		have, ok := cur.chains[name]
		if !ok || !slices.Equal(have, wantChains[name]) {
			changed = append(changed, name)
		}
	}
	for name := range cur.chains {
		if _, ok := wantChains[name]; !ok {
			removed = append(removed, name)
		}
	}
	slices.Sort(removed)
	var jumpFix []string
	for _, b := range builtins {
		if !jumpsInPlace(cur.builtin[b], wantJumps[b]) {
			jumpFix = append(jumpFix, b)
		}
	}
	if len(changed) == 0 && len(removed) == 0 && len(jumpFix) == 0 {
		return nil
	}

	var b strings.Builder
	b.WriteString("*" + want.Name + "\n")
	// Declaring a chain in --noflush mode creates or flushes it, so
	// rules in removed chains that jump elsewhere go away first.
	edits := map[string][]string{} // existing chains changed in place
	for _, n := range changed {
		if have, ok := cur.chains[n]; ok {
			if e := chainEdit(n, have, wantChains[n]); e != nil {
				edits[n] = e
			}
		}
	}
	for _, n := range append(slices.Clone(changed), removed...) {
		if _, ok := edits[n]; !ok {
			b.WriteString(":" + n + " - [0:0]\n")
		}
	}
	for _, bi := range jumpFix {
		for _, to := range ownJumps(cur.builtin[bi]) {
			b.WriteString("-D " + bi + " -j " + to + "\n")
		}
	}
	for _, n := range changed {
		if e, ok := edits[n]; ok {
			b.WriteString(strings.Join(e, "\n") + "\n")
			continue
		}
		for _, spec := range wantChains[n] {
			b.WriteString("-A " + n + " " + spec + "\n")
		}
	}
	for _, bi := range jumpFix {
		for i, to := range wantJumps[bi] {
			b.WriteString("-I " + bi + " " + strconv.Itoa(i+1) + " -j " + to + "\n")
		}
	}
	for _, n := range removed {
		b.WriteString("-X " + n + "\n")
	}
	b.WriteString("COMMIT\n")
	text := b.String()

	_, err := f.run(ctx, strings.NewReader(text), "iptables-restore", "-w", "--noflush")
	f.restores.Add(1)
	if err != nil {
		// The kernel may hold anything now: read it again next time.
		delete(f.known, want.Name)
		return fmt.Errorf("restore of table %s failed: %w%s", want.Name, err, failedLine(text, runner.Output(err)))
	}
	next := &tableState{chains: wantChains, builtin: map[string][]string{}}
	for bi, rules := range cur.builtin {
		next.builtin[bi] = rules
	}
	for _, bi := range jumpFix {
		var rules []string
		for _, to := range wantJumps[bi] {
			rules = append(rules, "-j "+to)
		}
		for _, r := range cur.builtin[bi] {
			if _, own := jumpTarget(r); !own {
				rules = append(rules, r)
			}
		}
		next.builtin[bi] = rules
	}
	f.known[want.Name] = next
	if len(f.changes) < 16 {
		f.changes = append(f.changes, describeFix(want.Name, cur, changed, removed, jumpFix))
	}
	return nil
}

// failedLine quotes the input line iptables-restore names in its error:
// "line 7: RULE_INSERT failed" (nft backend) or "Error occurred at line: 7"
// (parse errors). The nft backend blames COMMIT for what it finds only
// when committing ("Chain 'x' does not exist"): then the first line that
// mentions the quoted name is the culprit.
var (
	lineRef   = regexp.MustCompile(`line:? ([0-9]+)`)
	quotedRef = regexp.MustCompile(`'([^']+)'`)
)

func failedLine(text, out string) string {
	m := lineRef.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	n, err := strconv.Atoi(m[1])
	lines := strings.Split(text, "\n")
	if err != nil || n < 1 || n > len(lines) {
		return ""
	}
	if lines[n-1] == "COMMIT" {
		if q := quotedRef.FindStringSubmatch(out); q != nil {
			for i, l := range lines {
				if strings.HasPrefix(l, "-") && slices.Contains(strings.Fields(l), q[1]) {
					return fmt.Sprintf(" (line %d: %q)", i+1, l)
				}
			}
		}
	}
	return fmt.Sprintf(" (line %d: %q)", n, lines[n-1])
}

// read parses `iptables-save -t table` into its owned part.
func (f *Firewall) read(ctx context.Context, table string) (*tableState, error) {
	out, err := f.run(ctx, nil, "iptables-save", "-t", table)
	if err != nil {
		return nil, fmt.Errorf("%w; is iptables installed and are we root?", err)
	}
	return parseSave(out), nil
}

func parseSave(out []byte) *tableState {
	st := &tableState{chains: map[string][]string{}, builtin: map[string][]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if strings.HasPrefix(name, OwnedPrefix) {
				if _, ok := st.chains[name]; !ok {
					st.chains[name] = []string{}
				}
			}
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			if strings.HasPrefix(chain, OwnedPrefix) {
				st.chains[chain] = append(st.chains[chain], spec)
			} else if isBuiltin(chain) {
				st.builtin[chain] = append(st.builtin[chain], spec)
			}
		}
	}
	return st
}

func isBuiltin(chain string) bool {
	switch chain {
	case "INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING":
		return true
	}
	return false
}

// localChain is where the instance chains' jumps are.
const localChain = "nova-compute-local"

// ApplyChange applies an incremental plan change (plan.Update) to the
// filter table in one iptables-restore --noflush naming only the chains
// that changed: each added chain declared and filled and its jump
// inserted at its place, each removed one's jump deleted and the chain
// removed. It trusts what was applied last for the rest, so it renders
// nothing of the other n chains; the restore itself is iptables-nft's
// cost, which grows with the table (see docs/BENCHMARKS.md). A change of
// anything else, or nothing known, compares the whole of fw (Apply).
func (f *Firewall) ApplyChange(ctx context.Context, fw plan.Firewall, ch plan.Change) error {
	if ch.Full {
		return f.Apply(ctx, fw, false)
	}
	if ch.Chains.IsZero() {
		return nil
	}
	f.mu.Lock()
	done, err := f.applyChains(ctx, ch)
	f.mu.Unlock()
	if !done {
		return f.Apply(ctx, fw, false)
	}
	return err
}

// applyChains reports false when the change does not fit what is known.
func (f *Firewall) applyChains(ctx context.Context, ch plan.Change) (bool, error) {
	cur := f.known["filter"]
	if cur == nil || cur.chains[localChain] == nil {
		return false, nil
	}
	added := map[string]bool{}
	for _, c := range ch.Chains.Added {
		added[c.Name] = true
	}
	jumpOf := func(c plan.InstanceChain) string {
		return plan.Rule{Destination: netip.PrefixFrom(c.Address, 32), Target: plan.Target{Verdict: plan.Goto, Chain: c.Name}}.Spec()
	}
	local := slices.Clone(cur.chains[localChain])
	var b strings.Builder
	b.WriteString("*filter\n")
	// Removed chains come by descending position, added ones ascending:
	// each position holds while the ones before it are edited.
	for _, c := range ch.Chains.Removed {
		jump := jumpOf(c)
		i := c.Position
		if i >= len(local) || local[i] != jump {
			return false, nil
		}
		local = slices.Delete(local, i, i+1)
		b.WriteString("-D " + localChain + " " + jump + "\n")
		if !added[c.Name] {
			b.WriteString(":" + c.Name + " - [0:0]\n")
		}
	}
	rendered := map[*plan.Rule][]string{}
	specs := make(map[string][]string, len(ch.Chains.Added))
	for _, c := range ch.Chains.Added {
		var s []string
		if len(c.Rules) > 0 {
			s = rendered[&c.Rules[0]]
		}
		if s == nil {
			s = make([]string, len(c.Rules))
			for i, r := range c.Rules {
				s[i] = r.Spec()
			}
			if len(c.Rules) > 0 {
				rendered[&c.Rules[0]] = s
			}
		}
		specs[c.Name] = s
		b.WriteString(":" + c.Name + " - [0:0]\n")
		for _, spec := range s {
			b.WriteString("-A " + c.Name + " " + spec + "\n")
		}
	}
	for _, c := range ch.Chains.Added {
		if c.Position > len(local) {
			return false, nil
		}
		jump := jumpOf(c)
		local = slices.Insert(local, c.Position, jump)
		b.WriteString("-I " + localChain + " " + strconv.Itoa(c.Position+1) + " " + jump + "\n")
	}
	for _, c := range ch.Chains.Removed {
		if !added[c.Name] {
			b.WriteString("-X " + c.Name + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	text := b.String()
	_, err := f.run(ctx, strings.NewReader(text), "iptables-restore", "-w", "--noflush")
	f.restores.Add(1)
	if err != nil {
		delete(f.known, "filter") // the kernel may hold anything now
		return true, fmt.Errorf("restore of table filter failed: %w%s", err, failedLine(text, runner.Output(err)))
	}
	for _, c := range ch.Chains.Removed {
		if !added[c.Name] {
			delete(cur.chains, c.Name)
		}
	}
	for n, s := range specs {
		cur.chains[n] = s
	}
	cur.chains[localChain] = local
	return true, nil
}
