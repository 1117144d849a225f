package cli

import (
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"novanet/internal/lab"
)

func labCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "the seed topology in network namespaces: controller, two computes, VMs, an outside host",
		Long: `lab builds seed 003's topology with network namespaces on this machine
(root needed): a controller and compute-1/compute-2 with eth1 on a management
network and eth2 on the VM network, an outside host (203.0.113.254) behind
the controller's eth0, novanet serve and one novanet agent per host running
inside them, and VMs as namespaces plugged into their compute's br100 that
get their address from dnsmasq with busybox udhcpc or dhclient.
Nothing outside namespaces named <name>-* is touched.

State lives in /run/novanet-lab/<name>/ (configs, tokens, SQLite, logs,
leases). up refuses a lab that is already up or whose namespaces exist; down
removes exactly what up and boot made (processes by recorded pid after
checking their command line, namespaces by name, the state directory) and
is safe to run twice. Give labs distinct --name to run several at once.`,
	}
	cmd.PersistentFlags().String("name", "nnlab", "lab name (prefix of every namespace it makes)")
	cmd.AddCommand(labUpCmd(), labBootCmd(), labDeleteCmd(), labExecCmd(), labStatusCmd(g), labDownCmd(), labConsoleCmd())
	return cmd
}

// openLab opens the lab the group's --name names.
func openLab(cmd *cobra.Command) (*lab.Lab, error) {
	name, err := cmd.Flags().GetString("name")
	if err != nil {
		return nil, err
	}
	return lab.Open(name, cmd.OutOrStdout())
}

func labUpCmd() *cobra.Command {
	o := lab.DefaultOptions()
	var sameNet bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "create the namespaces, start serve and the agents, create the network",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("allow-same-net-traffic") {
				o.AllowSameNetTraffic = &sameNet
			}
			return l.Up(cmd.Context(), self, o)
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(underscores)
	f.BoolVar(&o.MultiHost, "multi-host", o.MultiHost, "every compute host is its VMs' gateway, DHCP server and NAT")
	f.BoolVar(&o.ForceDHCPRelease, "force-dhcp-release", o.ForceDHCPRelease, "release a deleted VM's lease at once")
	f.IntVar(&o.DisassociateTimeout, "disassociate-timeout", o.DisassociateTimeout, "fixed_ip_disassociate_timeout in seconds")
	f.StringVar(&o.ResyncInterval, "resync-interval", o.ResyncInterval, "agents' full resync interval")
	f.StringVar(&o.DHCPClient, "dhcp-client", o.DHCPClient, "DHCP client in VMs: udhcpc (busybox, as cirros) or dhclient")
	f.StringVar(&o.FirewallDriver, "firewall-driver", o.FirewallDriver, "the agents' firewall_driver: iptables or nftables")
	f.StringVar(&o.FixedRange, "fixed-range", "10.0.0.0/24", "the VM network (the first address is the controller's bridge address)")
	f.BoolVar(&sameNet, "allow-same-net-traffic", true, "allow_same_net_traffic: VMs of the network reach each other without a group rule")
	return cmd
}

func labBootCmd() *cobra.Command {
	var host, client, userData, keyName, keyFile string
	var useQEMU bool
	cmd := &cobra.Command{
		Use:   "boot NAME",
		Short: "boot a VM on a compute host and wait for its DHCP lease",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			spec, err := labBootSpec(args[0], host, client, userData, keyName, keyFile)
			if err != nil {
				return err
			}
			wait := 20 * time.Second
			if useQEMU {
				// An emulated (TCG) guest boots its kernel before asking.
				spec.QEMU, wait = true, 90*time.Second
			}
			_, err = l.BootMany(cmd.Context(), []lab.VMSpec{spec}, wait)
			return err
		},
	}
	cmd.Flags().StringVar(&host, "host", "compute-1", "compute-1, compute-2 (or controller)")
	cmd.Flags().StringVar(&client, "dhcp-client", "", "udhcpc or dhclient (default: the one given at up)")
	addMetadataBootFlags(cmd, &userData, &keyName, &keyFile)
	cmd.Flags().BoolVar(&useQEMU, "qemu", false, "boot a real Linux guest under QEMU (its tap made by QEMU, as libvirt does) instead of a namespace")
	return cmd
}

func labDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "delete a VM (its lease is released when force_dhcp_release is on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			return l.Delete(cmd.Context(), args[0])
		},
	}
}

func labExecCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "exec HOST|VM -- COMMAND...",
		Short: "run a command inside a host's or VM's namespace (or a QEMU guest)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			if l.IsQEMUGuest(args[0]) {
				return execInQEMUGuest(cmd, l, args[0], args[1:])
			}
			ns, err := l.Namespace(args[0])
			if err != nil {
				return err
			}
			c := exec.CommandContext(cmd.Context(), "ip", append([]string{"netns", "exec", ns}, args[1:]...)...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
						os.Exit(ws.ExitStatus())
					}
				}
				return err
			}
			return nil
		},
	}
}

func labStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "show the lab's hosts, daemons and VMs with their leases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			return printLabStatus(g, st)
		},
	}
}

func labDownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "stop everything and remove every namespace and file the lab made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			return l.Down(cmd.Context())
		},
	}
}
