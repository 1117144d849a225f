package model

import (
	"time"
	"unicode/utf8"
)

// HostReport is one agent's host as operators list it (`novanet host
// list`, like `openstack network agent list`).
type HostReport struct {
	Host string `json:"host"`
	// Roles: "network" (gateway, DHCP and NAT for a network) and/or
	// "compute" (instances run on it); empty before either.
	Roles           []string  `json:"roles"`
	Revision        int64     `json:"revision"`
	AppliedRevision int64     `json:"applied_revision"`
	LastSeen        time.Time `json:"last_seen"`
	Version         string    `json:"version"`
	Problem         string    `json:"problem"`
	// LastDrift is the last drift the agent repaired (what differed,
	// what it did, when and how long it took); empty before any.
	LastDrift string `json:"last_drift"`
}

// AppliedReport is what an agent reports after applying its host state.
type AppliedReport struct {
	Revision int64  `json:"revision"`
	Problem  string `json:"problem"` // "" when the apply succeeded
	// LastDrift is the agent's last repair of drift ("" = none yet).
	LastDrift string `json:"last_drift"`
}

// MaxReportText bounds an applied report's problem and drift texts.
const MaxReportText = 4096

// Check validates a report from an agent.
func (r AppliedReport) Check() error {
	if r.Revision < 0 {
		return invalidf("revision must not be negative")
	}
	if err := CheckText("problem", r.Problem, MaxReportText); err != nil {
		return err
	}
	return CheckText("last_drift", r.LastDrift, MaxReportText)
}

// Shorten cuts s to at most max bytes at a rune boundary, marking the cut,
// so an agent's long error still fits its report.
func Shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = " ...(cut)"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
