package cli

import (
	"github.com/spf13/cobra"

	"novanet/internal/dhcpbridge"
)

// dhcpbridgeCmd is `novanet dhcpbridge`, the same script as the
// novanet-dhcpbridge link (cmd/novanet dispatches that one before cobra
// starts), for a --dhcp-script given as "novanet dhcpbridge" by a wrapper.
func dhcpbridgeCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "dhcpbridge add|old|del <mac> <ip> [hostname] | init",
		Short:              "dnsmasq's --dhcp-script: hand a lease event to the local agent",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return dhcpbridge.Run(args, cmd.OutOrStdout())
		},
	}
}
