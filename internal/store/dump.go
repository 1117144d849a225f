package store

import (
	"context"
	"fmt"
	"strings"
)

// dumpTables lists every table with its ordering key. hosts.last_seen is
// left out of the dump: it moves whenever an agent reports, which is not
// a change of state.
var dumpTables = []struct{ name, cols, order string }{
	{"schema_migrations", "version, name", "version"},
	{"networks", "*", "id"},
	{"fixed_ips", "*", "id"},
	{"virtual_interfaces", "*", "id"},
	{"instances", "*", "uuid"},
	{"instance_security_groups", "*", "instance_uuid, group_id"},
	{"security_groups", "*", "id"},
	{"security_group_rules", "*", "id"},
	{"default_security_group_rules", "*", "id"},
	{"floating_ips", "*", "id"},
	{"dhcp_releases", "*", "id"},
	{"hosts", "name, revision, applied_revision, problem", "name"},
	{"quotas", "*", "project_id, resource"},
	{"instance_passwords", "*", "instance_uuid"},
}

// Dump prints every table, rows in key order, one line per row, so tests
// can prove that a rejected request changed nothing by comparing dumps.
// Only hosts.last_seen and schema_migrations.applied_at are omitted.
func (s *Store) Dump(ctx context.Context) (string, error) {
	var b strings.Builder
	err := s.View(ctx, func(tx *Tx) error {
		for _, tb := range dumpTables {
			rows, err := tx.Query(ctx, `SELECT `+tb.cols+` FROM `+tb.name+` ORDER BY `+tb.order)
			if err != nil {
				return fmt.Errorf("dump %s: %w", tb.name, err)
			}
			cols, err := rows.Columns()
			if err != nil {
				rows.Close()
				return err
			}
			fmt.Fprintf(&b, "== %s (%s)\n", tb.name, strings.Join(cols, ", "))
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return err
				}
				for i, v := range vals {
					if i > 0 {
						b.WriteString(" | ")
					}
					switch x := v.(type) {
					case nil:
						b.WriteString("NULL")
					case []byte:
						b.Write(x)
					default:
						fmt.Fprint(&b, x)
					}
				}
				b.WriteByte('\n')
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return b.String(), err
}
