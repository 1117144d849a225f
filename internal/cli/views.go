package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// The operator's views: hosts (what `openstack network agent list` gave).

func hostCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "the hosts agents run on"}
	list := &cobra.Command{
		Use: "list", Short: "every host: roles, applied revision, last seen, agent version, last problem (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			hs, err := c.ListHosts(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(hs))
			for _, h := range hs {
				seen := "never"
				if !h.LastSeen.IsZero() {
					seen = h.LastSeen.UTC().Format(time.RFC3339)
				}
				applied := strconv.FormatInt(h.AppliedRevision, 10) + "/" + strconv.FormatInt(h.Revision, 10)
				rows = append(rows, []string{h.Host, orDash(strings.Join(h.Roles, ",")), applied, seen, orDash(h.Version), orDash(h.Problem)})
			}
			return g.print(hs, []string{"HOST", "ROLES", "APPLIED", "LAST_SEEN", "VERSION", "PROBLEM"}, rows)
		},
	}
	cmd.AddCommand(list)
	return cmd
}
