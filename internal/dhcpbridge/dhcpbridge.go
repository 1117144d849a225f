// Package dhcpbridge is dnsmasq's --dhcp-script (novanet-dhcpbridge) and
// the agent's side of it. dnsmasq forks the script for every lease event;
// the script hands the event to the local agent over a unix socket and
// exits, so it stays small: no store, no HTTP, no cobra. For `init`
// (dnsmasq runs with --leasefile-ro) it prints the leases the agent knows.
package dhcpbridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"novanet/internal/model"
)

const (
	// SocketEnv names the agent socket; dnsmasq inherits the agent's
	// environment and passes it on to the script.
	SocketEnv = "NOVANET_AGENT_SOCKET"
	// BridgeEnv names the bridge a dnsmasq serves; the supervisor sets it
	// per process so `init` knows whose leases to print.
	BridgeEnv = model.DHCPScriptBridgeEnv
	// DefaultSocket is used when SocketEnv is unset.
	DefaultSocket = "/run/novanet/agent.sock"
)

// Protocol is the version of the lease socket's requests and answers.
// The script and the agent refuse a different one (protocol 1 named
// none) with a message naming both, rather than misreading each other:
// dnsmasq may run an older or newer novanet-dhcpbridge than the agent.
const Protocol = 2

// Handler is what the agent offers the script.
type Handler interface {
	HandleLease(ctx context.Context, ev model.LeaseEvent) error
	Leases(ctx context.Context, bridge string) ([]model.Lease, error)
}

// LeaseTimer, when the handler implements it, gives the lease time used
// for the expiry column of `init`.
type LeaseTimer interface {
	LeaseTime() time.Duration
}

// request and response are one JSON line each way.
type request struct {
	Protocol int    `json:"protocol"`
	Action   string `json:"action"`
	MAC      string `json:"mac,omitempty"`
	Address  string `json:"address,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Bridge   string `json:"bridge,omitempty"`
}

type response struct {
	Protocol     int           `json:"protocol"`
	Error        string        `json:"error,omitempty"`
	Leases       []model.Lease `json:"leases,omitempty"`
	LeaseSeconds int64         `json:"lease_seconds,omitempty"`
}

// Main runs the script: args are what dnsmasq passes after the program
// name. It returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if err := Run(args, stdout); err != nil {
		fmt.Fprintf(stderr, "novanet-dhcpbridge: %v\n", err)
		return 1
	}
	return 0
}

// Run is Main for callers that report errors themselves (the hidden
// `novanet dhcpbridge` command).
func Run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: novanet-dhcpbridge add|old|del <mac> <ip> [hostname] | init (dnsmasq's --dhcp-script)")
	}
	req := request{Protocol: Protocol, Action: args[0], Bridge: os.Getenv(BridgeEnv)}
	if req.Bridge == "" {
		req.Bridge = os.Getenv("DNSMASQ_INTERFACE")
	}
	switch req.Action {
	case "add", "old", "del":
		if len(args) < 3 {
			return fmt.Errorf("%s needs <mac> <ip> [hostname]", req.Action)
		}
		req.MAC, req.Address = args[1], args[2]
		if len(args) > 3 {
			req.Hostname = args[3]
		}
		if a, err := netip.ParseAddr(req.Address); err == nil && a.Is6() {
			return nil // IPv6 leases: novanet tracks IPv4 fixed IPs only
		}
		// Judged here as the agent and the API would, so that dnsmasq's
		// log says what is wrong without a round trip.
		ev, err := model.ParseLeaseEvent(req.Action, req.MAC, req.Address, req.Hostname)
		if err != nil {
			return fmt.Errorf("dnsmasq's %s event: %w", req.Action, err)
		}
		req.MAC = ev.MAC
	case "init":
	case "tftp", "arp", "arp-add", "arp-del", "relay-snoop":
		return nil // events novanet does not use
	default:
		return fmt.Errorf("unknown action %q", req.Action)
	}
	path := os.Getenv(SocketEnv)
	if path == "" {
		path = DefaultSocket
	}
	resp, err := call(path, req)
	if err != nil {
		return err
	}
	if req.Action == "init" {
		expiry := time.Now().Unix() + resp.LeaseSeconds
		w := bufio.NewWriter(stdout)
		for _, l := range resp.Leases {
			name := l.Hostname
			if name == "" {
				name = "*"
			}
			fmt.Fprintf(w, "%d %s %s %s *\n", expiry, l.MAC, l.Address, name)
		}
		return w.Flush()
	}
	return nil
}

func call(path string, req request) (response, error) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return response{}, fmt.Errorf("agent socket %s: %w; is novanet agent running?", path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return response{}, fmt.Errorf("send to agent: %w", err)
	}
	var resp response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return response{}, fmt.Errorf("agent reply: %w", err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	if resp.Protocol != Protocol {
		return resp, fmt.Errorf("the agent on %s speaks lease socket protocol %d, this script %d: %s", path, max(resp.Protocol, 1), Protocol, upgradeHint(max(resp.Protocol, 1), "the agent", "this script (novanet-dhcpbridge)"))
	}
	return resp, nil
}

// Listen makes the agent's socket, replacing a stale one.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory for %s: %w; set agent_socket", path, err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("agent socket %s is in use: is another agent running on this host?", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Only root may talk to the agent: a lease event can release an
	// address, and dnsmasq runs its --dhcp-script as root.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict %s to root: %w", path, err)
	}
	return ln, nil
}

// Serve answers script requests until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept on agent socket: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, conn, h)
		}()
	}
}

func serveConn(ctx context.Context, conn net.Conn, h Handler) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req request
	if err := json.NewDecoder(conn).Decode(&req); err != nil {
		_ = json.NewEncoder(conn).Encode(response{Error: "malformed request: " + err.Error()})
		return
	}
	resp := response{Protocol: Protocol}
	if req.Protocol != Protocol {
		v := max(req.Protocol, 1) // protocol 1 named none
		resp.Error = fmt.Sprintf("this dhcp script speaks lease socket protocol %d, the agent %d: %s", v, Protocol, upgradeHint(v, "the script (novanet-dhcpbridge, dnsmasq's --dhcp-script)", "the agent"))
		_ = json.NewEncoder(conn).Encode(resp)
		return
	}
	switch req.Action {
	case "add", "old", "del":
		ev, err := model.ParseLeaseEvent(req.Action, req.MAC, req.Address, req.Hostname)
		if err != nil {
			resp.Error = err.Error()
			break
		}
		if err := h.HandleLease(ctx, ev); err != nil {
			resp.Error = err.Error()
		}
	case "init":
		ls, err := h.Leases(ctx, req.Bridge)
		if err != nil {
			resp.Error = err.Error()
			break
		}
		resp.Leases = ls
		resp.LeaseSeconds = model.DefaultDHCPLeaseTime
		if lt, ok := h.(LeaseTimer); ok && lt.LeaseTime() > 0 {
			resp.LeaseSeconds = int64(lt.LeaseTime() / time.Second)
		}
	default:
		resp.Error = fmt.Sprintf("unknown action %q", req.Action)
	}
	_ = json.NewEncoder(conn).Encode(resp)
}

// upgradeHint says which side to upgrade: the other one (speaking v) when
// it is older than this one, this one otherwise.
func upgradeHint(v int, other, self string) string {
	if v < Protocol {
		return "upgrade " + other + " so both speak the same"
	}
	return "upgrade " + self + " so both speak the same"
}
