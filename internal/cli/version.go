package cli

import (
	"github.com/spf13/cobra"

	"novanet/internal/version"
)

// versionCmd prints the binary's identity (also `novanet --version`).
func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print novanet's version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := version.Get()
			return g.printObject(i, []field{
				{"version", i.Version}, {"commit", i.Commit}, {"build_date", i.BuildDate}, {"go_version", i.GoVersion},
			})
		},
	}
}
