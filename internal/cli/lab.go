package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"novanet/internal/lab"
)

func init() { Register(labCmd) }

func labCmd() *cobra.Command {
	var name string
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
	cmd.PersistentFlags().StringVar(&name, "name", "nnlab", "lab name (prefix of every namespace it makes)")
	open := func(cmd *cobra.Command) (*lab.Lab, error) {
		return lab.Open(name, cmd.OutOrStdout())
	}

	o := lab.DefaultOptions()
	var sameNet bool
	up := &cobra.Command{
		Use:   "up",
		Short: "create the namespaces, start serve and the agents, create the network",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := open(cmd)
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
	f := up.Flags()
	f.SetNormalizeFunc(underscores)
	f.BoolVar(&o.MultiHost, "multi-host", o.MultiHost, "every compute host is its VMs' gateway, DHCP server and NAT")
	f.BoolVar(&o.ForceDHCPRelease, "force-dhcp-release", o.ForceDHCPRelease, "release a deleted VM's lease at once")
	f.IntVar(&o.DisassociateTimeout, "disassociate-timeout", o.DisassociateTimeout, "fixed_ip_disassociate_timeout in seconds")
	f.StringVar(&o.ResyncInterval, "resync-interval", o.ResyncInterval, "agents' full resync interval")
	f.StringVar(&o.DHCPClient, "dhcp-client", o.DHCPClient, "DHCP client in VMs: udhcpc (busybox, as cirros) or dhclient")
	f.StringVar(&o.FirewallDriver, "firewall-driver", o.FirewallDriver, "the agents' firewall_driver: iptables or nftables")
	f.StringVar(&o.FixedRange, "fixed-range", "10.0.0.0/24", "the VM network (the first address is the controller's bridge address)")
	f.BoolVar(&sameNet, "allow-same-net-traffic", true, "allow_same_net_traffic: VMs of the network reach each other without a group rule")

	var host, client, userData, keyName, keyFile string
	var useQEMU bool
	boot := &cobra.Command{
		Use:   "boot NAME",
		Short: "boot a VM on a compute host and wait for its DHCP lease",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := open(cmd)
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
	boot.Flags().StringVar(&host, "host", "compute-1", "compute-1, compute-2 (or controller)")
	boot.Flags().StringVar(&client, "dhcp-client", "", "udhcpc or dhclient (default: the one given at up)")
	addMetadataBootFlags(boot, &userData, &keyName, &keyFile)
	boot.Flags().BoolVar(&useQEMU, "qemu", false, "boot a real Linux guest under QEMU (its tap made by QEMU, as libvirt does) instead of a namespace")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "delete a VM (its lease is released when force_dhcp_release is on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := open(cmd)
			if err != nil {
				return err
			}
			return l.Delete(cmd.Context(), args[0])
		},
	}

	execCmd := &cobra.Command{
		Use:   "exec HOST|VM -- COMMAND...",
		Short: "run a command inside a host's or VM's namespace (or a QEMU guest)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := open(cmd)
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

	status := &cobra.Command{
		Use:   "status",
		Short: "show the lab's hosts, daemons and VMs with their leases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := open(cmd)
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			if done, err := labStatusOutput(cmd, st); done {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON, err := outputJSON(cmd); err != nil {
				return err
			} else if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			if !st.Up {
				fmt.Fprintf(out, "lab %s is down\n", name)
				for _, ns := range st.Namespaces {
					if ns.Exists {
						fmt.Fprintf(out, "but namespace %s exists: run `novanet lab down --name %s`\n", ns.Name, name)
					}
				}
				return nil
			}
			w := newTable(out)
			fmt.Fprintln(w, "NAMESPACE\tROLE\tEXISTS")
			for _, ns := range st.Namespaces {
				fmt.Fprintf(w, "%s\t%s\t%t\n", ns.Name, ns.Role, ns.Exists)
			}
			w.Flush()
			fmt.Fprintln(out)
			w = newTable(out)
			fmt.Fprintln(w, "DAEMON\tPID\tRUNNING")
			for _, d := range st.Daemons {
				fmt.Fprintf(w, "%s\t%d\t%t\n", d.Key, d.PID, d.Running)
			}
			w.Flush()
			fmt.Fprintln(out)
			w = newTable(out)
			fmt.Fprintln(w, "VM\tHOST\tALLOCATED\tGUEST ADDRESS\tROUTER\tDNS\tDHCP SERVER\tCLIENT\tSTORE LEASED\tMAC\tTAP\tFLOATING")
			for _, vm := range st.VMs {
				client := vm.Client
				if !vm.ClientRunning {
					client += " (dead)"
				}
				leased := fmt.Sprint(vm.APILeased)
				if st.APIError != "" {
					leased = "?"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", vm.Name, vm.Host, vm.Address,
					dash(vm.Lease.Address), dash(vm.Lease.Router), dash(vm.Lease.DNS), dash(vm.Lease.Server), client, leased, vm.MAC, vm.Device, dash(strings.Join(vm.FloatingIPs, ",")))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if st.APIError != "" {
				fmt.Fprintf(out, "\nthe API did not answer (store view unknown): %s\n", st.APIError)
			}
			printLabAPI(out, name, st.API)
			return nil
		},
	}

	down := &cobra.Command{
		Use:   "down",
		Short: "stop everything and remove every namespace and file the lab made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := open(cmd)
			if err != nil {
				return err
			}
			return l.Down(cmd.Context())
		},
	}
	cmd.AddCommand(up, boot, del, execCmd, status, down)
	cmd.AddCommand(labConsoleCommand(open))
	return cmd
}

// printLabAPI says how to drive the lab's API: the endpoint answers inside
// the lab's namespaces.
func printLabAPI(out io.Writer, name string, a lab.APIAccess) {
	fmt.Fprintf(out, "\nAPI %s (inside the lab: novanet lab exec --name %s controller -- novanet --os-url %s --os-token TOKEN ...)\n", a.URL, name, a.URL)
	fmt.Fprintf(out, "  admin token:   %s\n", a.AdminToken)
	fmt.Fprintf(out, "  project token: %s (project %s, the VMs' project)\n", a.ProjectToken, a.ProjectID)
	fmt.Fprintf(out, "  floating pool: %s (%s), reachable from the outside host\n", a.FloatingPool, a.FloatingCIDR)
}

// outputJSON reads the root's --output flag (lab commands are registered
// without the shared globals).
func outputJSON(cmd *cobra.Command) (bool, error) {
	f := cmd.Flag("output")
	if f == nil {
		return false, nil
	}
	switch v := f.Value.String(); v {
	case "table", "":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, usagef("--output %q is unknown; use table or json", v)
	}
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }
