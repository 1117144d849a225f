package store

import "context"

// HostReport is a host as `novanet host list` shows it: its row plus the
// roles the store gives it.
type HostReport struct {
	Host
	AgentVersion string
	// NetworkHost: the host of a single-host network, or a multi-host
	// network's gateway on the host; Compute: instances run on it.
	NetworkHost bool
	Compute     bool
}

// SetAgentVersion records the version a host's agent reported.
func (t *Tx) SetAgentVersion(ctx context.Context, name, version string) error {
	_, err := t.Exec(ctx, `INSERT INTO hosts (name, agent_version, last_seen) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET agent_version = excluded.agent_version`, name, version, Now())
	return err
}

// HostReports lists every host with its roles, by name.
func (t *Tx) HostReports(ctx context.Context) ([]HostReport, error) {
	rows, err := t.Query(ctx, `SELECT h.name, h.revision, h.applied_revision, h.problem, h.last_seen, h.agent_version,
		EXISTS (SELECT 1 FROM networks n WHERE n.host = h.name AND NOT n.multi_host)
		  OR EXISTS (SELECT 1 FROM fixed_ips f WHERE f.host = h.name),
		EXISTS (SELECT 1 FROM instances i WHERE i.host = h.name)
		FROM hosts h ORDER BY h.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HostReport
	for rows.Next() {
		var h HostReport
		var seen int64
		if err := rows.Scan(&h.Name, &h.Revision, &h.AppliedRevision, &h.Problem, &seen, &h.AgentVersion, &h.NetworkHost, &h.Compute); err != nil {
			return nil, err
		}
		h.LastSeen = fromMicros(seen)
		out = append(out, h)
	}
	return out, rows.Err()
}
