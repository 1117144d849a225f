package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"novanet/internal/model"
)

// Part is a set of the datapath's parts to re-check against the kernel.
type Part uint8

const (
	// PartSysctls: the forwarding and bridge sysctls.
	PartSysctls Part = 1 << iota
	// PartLinks: bridges, uplinks, addresses and taps.
	PartLinks
	// PartFirewall: the nova-* chains and the jumps into them.
	PartFirewall
	// PartDHCP: dnsmasq processes and their host entries.
	PartDHCP
	// partFull re-reads everything instead of trusting what was applied.
	partFull
	// partState: a new desired state, not drift.
	partState

	// PartAll is every part of the datapath.
	PartAll = PartSysctls | PartLinks | PartFirewall | PartDHCP
)

func (p Part) String() string {
	var out []string
	for _, n := range []struct {
		p    Part
		name string
	}{{PartSysctls, "sysctls"}, {PartLinks, "links"}, {PartFirewall, "firewall"}, {PartDHCP, "dhcp"}, {partFull, "full"}, {partState, "state"}} {
		if p&n.p != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

// pending is what the apply loop has been asked to re-check.
type pending struct {
	parts   Part
	since   time.Time // when the first pending request arrived
	reasons []string  // what was seen, deduplicated, bounded
}

func (p *pending) add(parts Part, reason string, at time.Time) {
	if p.parts == 0 {
		p.since = at
	}
	p.parts |= parts
	if reason != "" && len(p.reasons) < 8 && !slices.Contains(p.reasons, reason) {
		p.reasons = append(p.reasons, reason)
	}
}

// ChangeReporter is implemented by appliers that can say what they
// changed in the kernel (what differed and what was done) since the
// last call; the agent reports those changes as repairs.
type ChangeReporter interface {
	TakeChanges() []string
}

func (a *Agent) takeChanges() []string {
	var out []string
	for _, x := range []any{a.links, a.firewall, a.dhcp} {
		if r, ok := x.(ChangeReporter); ok {
			out = append(out, r.TakeChanges()...)
		}
	}
	return out
}

// Drift is one repair: what differed, what was done, how long from the
// first sign of it to the kernel matching the plan again.
type Drift struct {
	At      time.Time     `json:"at"`
	Seen    []string      `json:"seen"` // what triggered the check
	Done    []string      `json:"done"` // what differed and what was changed
	Took    time.Duration `json:"took_ns"`
	Parts   string        `json:"parts"`
	Failure string        `json:"failure,omitempty"`
}

func (d Drift) String() string {
	s := fmt.Sprintf("%s: %s (repaired in %d ms", d.At.UTC().Format(time.RFC3339), strings.Join(d.Done, "; "), d.Took.Milliseconds())
	if len(d.Seen) > 0 {
		s += "; seen: " + strings.Join(d.Seen, "; ")
	}
	if d.Failure != "" {
		s += "; still failing: " + d.Failure
	}
	return s + ")"
}

// repairStats are the agent's repair counters.
type repairStats struct {
	repairs int            // applies that changed the kernel without a new state
	byPart  map[string]int // repairs per part
	changes int            // kernel changes made by those repairs
	last    *Drift
}

// noteRepair records and logs the applied changes when they repaired
// drift (not a new desired state), and returns the host's report of the
// last drift.
func (a *Agent) noteRepair(pd pending, done []string, start time.Time) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(done) > 0 && pd.parts&partState == 0 {
		d := Drift{At: pd.since, Seen: pd.reasons, Done: done, Took: time.Since(pd.since), Parts: pd.parts.String()}
		if a.lastErr != nil {
			d.Failure = a.lastErr.Error()
		}
		a.repairs.repairs++
		a.repairs.changes += len(done)
		if a.repairs.byPart == nil {
			a.repairs.byPart = map[string]int{}
		}
		for _, p := range []Part{PartSysctls, PartLinks, PartFirewall, PartDHCP} {
			if pd.parts&p != 0 {
				a.repairs.byPart[p.String()]++
				a.cfg.Metrics.ObserveRepair(p.String())
			}
		}
		a.repairs.last = &d
		a.log.Warn("repaired drift", "changes", strings.Join(done, "; "), "seen", strings.Join(pd.reasons, "; "),
			"took_ms", float64(d.Took.Microseconds())/1000, "apply_ms", float64(time.Since(start).Microseconds())/1000,
			"parts", d.Parts, "repairs", a.repairs.repairs)
	}
	if a.repairs.last == nil {
		return ""
	}
	return a.repairs.last.String()
}

// Status is a snapshot for operators and tests.
type Status struct {
	Revision        int64
	AppliedRevision int64
	Syncs           int
	LastError       string
	// APIDown: the last API call failed; the datapath runs from the
	// cached state.
	APIDown bool
	// Repairs counts applies that found and repaired drift; RepairChanges
	// the kernel changes they made; RepairsByPart splits Repairs by part
	// (sysctls, links, firewall, dhcp).
	Repairs       int
	RepairChanges int
	RepairsByPart map[string]int
	// LastDrift is the last repair, nil when none.
	LastDrift *Drift
}

// Status returns the agent's current status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{Revision: a.state.Revision, AppliedRevision: a.applied, Syncs: a.syncs, APIDown: a.apiDown,
		Repairs: a.repairs.repairs, RepairChanges: a.repairs.changes, RepairsByPart: map[string]int{}}
	for k, v := range a.repairs.byPart {
		s.RepairsByPart[k] = v
	}
	if a.repairs.last != nil {
		d := *a.repairs.last
		s.LastDrift = &d
	}
	if a.lastErr != nil {
		s.LastError = a.lastErr.Error()
	}
	return s
}

// report is what the host's status at the API should say.
type report struct {
	revision int64
	problem  string
	drift    string
	queued   bool
	sent     bool
}

// queueReport hands the reporter the latest outcome; only the newest
// matters, so a hung API delays reports, never applies.
// force sends it even when unchanged (a full resync doubles as the
// host's heartbeat).
func (a *Agent) queueReport(rev int64, err error, drift string, force bool) {
	problem := ""
	if err != nil {
		problem = err.Error()
	}
	a.mu.Lock()
	r := report{revision: rev, problem: problem, drift: drift, queued: true}
	same := !force && a.toReport.sent && a.toReport.revision == rev && a.toReport.problem == problem && a.toReport.drift == drift
	if !same {
		a.toReport = r
	}
	a.mu.Unlock()
	if same {
		return
	}
	select {
	case a.reports <- struct{}{}:
	default:
	}
}

// reporter posts queued reports to the API, each within its own
// deadline, retrying a failed one after a pause.
func (a *Agent) reporter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.reports:
		}
		if !a.sendReport(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			select {
			case a.reports <- struct{}{}:
			default:
			}
		}
	}
}

// sendReport posts the queued report; false when the API did not take it.
func (a *Agent) sendReport(ctx context.Context) bool {
	a.mu.Lock()
	r := a.toReport
	a.mu.Unlock()
	if r.sent || !r.queued {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.api.ReportApplied(rctx, a.cfg.Host, model.AppliedReport{Revision: r.revision, Problem: model.Shorten(r.problem, model.MaxReportText), LastDrift: model.Shorten(r.drift, model.MaxReportText)}); err != nil {
		a.mu.Lock()
		first := !a.reportFailing
		a.reportFailing = true
		a.mu.Unlock()
		lvl := slog.LevelDebug
		if first {
			lvl = slog.LevelWarn
		}
		a.log.Log(ctx, lvl, "report of the applied revision failed; retrying every 2s", "revision", r.revision, "err", err)
		return false
	}
	a.mu.Lock()
	recovered := a.reportFailing
	a.reportFailing = false
	a.mu.Unlock()
	if recovered {
		a.log.Info("report of the applied revision delivered again", "revision", r.revision)
	}
	a.mu.Lock()
	if a.toReport == r {
		a.toReport.sent = true
	}
	a.mu.Unlock()
	return true
}
