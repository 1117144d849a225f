package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"novanet/internal/lab"
)

// labConsoleCmd is `lab console NAME`: what a QEMU guest printed on
// its serial console (its boot, leases and ping of the router).
func labConsoleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "console NAME",
		Short: "print a QEMU guest's serial console (boot --qemu)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			out, err := l.Console(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
}

// execInQEMUGuest runs argv in a QEMU guest over its command channel
// (a shell line, each argument quoted) and exits with its status.
func execInQEMUGuest(cmd *cobra.Command, l *lab.Lab, name string, argv []string) error {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	out, rc, err := l.GuestExec(cmd.Context(), name, strings.Join(quoted, " "), 60*time.Second)
	fmt.Fprint(cmd.OutOrStdout(), out)
	if err != nil {
		return err
	}
	if rc != 0 {
		os.Exit(rc)
	}
	return nil
}
