package manager

import (
	"context"

	"novanet/internal/model"
	"novanet/internal/store"
)

// ListHosts returns every host the store knows with its roles and what its
// agent last reported (admin only; the API checks).
func (m *Manager) ListHosts(ctx context.Context) ([]model.HostReport, error) {
	var rows []store.HostReport
	if err := m.view(ctx, func(tx *store.Tx) error {
		var err error
		rows, err = tx.HostReports(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]model.HostReport, 0, len(rows))
	for _, h := range rows {
		roles := []string{}
		if h.NetworkHost {
			roles = append(roles, "network")
		}
		if h.Compute {
			roles = append(roles, "compute")
		}
		out = append(out, model.HostReport{Host: h.Name, Roles: roles, Revision: h.Revision, AppliedRevision: h.AppliedRevision,
			LastSeen: h.LastSeen, Version: h.AgentVersion, Problem: h.Problem, LastDrift: h.LastDrift})
	}
	return out, nil
}

// ReportAgentVersion records the version host's agent runs; an unchanged
// version costs no write.
func (m *Manager) ReportAgentVersion(ctx context.Context, host, version string) error {
	if err := model.CheckHostName("host", host); err != nil {
		return err
	}
	if err := model.CheckName("agent version", version, model.MaxAgentVersionBytes); err != nil {
		return err
	}
	m.mu.Lock()
	same := m.agentVersions[host] == version
	m.mu.Unlock()
	if same {
		return nil
	}
	if err := m.st.Update(ctx, func(tx *store.Tx) error { return tx.SetAgentVersion(ctx, host, version) }); err != nil {
		return err
	}
	m.mu.Lock()
	if m.agentVersions == nil {
		m.agentVersions = map[string]string{}
	}
	m.agentVersions[host] = version
	m.mu.Unlock()
	return nil
}
