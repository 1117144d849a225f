package cli

import (
	"os"

	"github.com/spf13/cobra"

	"novanet/internal/dhcpbridge"
)

func init() { Register(dhcpbridgeCmd) }

func dhcpbridgeCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "dhcpbridge add|old|del <mac> <ip> [hostname] | init",
		Short:              "dnsmasq's --dhcp-script: hand a lease event to the local agent",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := dhcpbridge.Main(args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
}
