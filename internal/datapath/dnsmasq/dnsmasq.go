// Package dnsmasq supervises one dnsmasq per bridge the host serves and
// sends DHCPRELEASEs to them. dnsmasq daemonizes and outlives the agent:
// a restarted agent adopts a running dnsmasq whose command line matches
// the plan, so restarting the agent restarts nothing. Static hosts are
// one file per MAC in --dhcp-hostsdir: a new instance is a new file that
// dnsmasq picks up by inotify; a removed or changed one gets a SIGHUP,
// because dnsmasq keeps old entries of deleted files until then.
package dnsmasq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"novanet/internal/datapath/runner"
	"novanet/internal/model"
	"novanet/internal/netnsdo"
	"novanet/internal/plan"
)

// Binary is the dnsmasq program run.
const Binary = "dnsmasq"

// Supervisor is the applier. Use New.
type Supervisor struct {
	// Netns, when set, runs dnsmasq and sends releases inside that named
	// network namespace (tests); the agent runs inside its host's
	// namespace and leaves it empty.
	Netns string
	// NetworksPath is where pid files of dnsmasqs this host no longer
	// needs are looked for (nova-*.pid).
	NetworksPath string
	// StableAfter is how long a started dnsmasq must live for its
	// failures to be forgotten (New: DefaultStableAfter).
	StableAfter time.Duration

	log *slog.Logger
	mu  sync.Mutex
	// hosts: dnsmasq name -> file -> line, as written (nil: read the
	// directory first). Trusted until the hosts watch or Recheck says a
	// file or the directory changed.
	hosts map[string]map[string]string
	// suspect: name -> what must be re-read before it is trusted again.
	suspect map[string]*suspicion
	// watch is the inotify state of the hosts directories (nil until
	// WatchHosts runs).
	watch *hostsWatch
	// changes describes kernel and file changes since TakeChanges.
	changes []string
	// applied: dnsmasq name -> the paths it was given, for Watch and for
	// cleaning up exactly those once it is no longer wanted.
	applied map[string]paths
	// failures: name -> consecutive failed starts (or deaths soon after
	// a start) and the time of the last.
	failures map[string]failure
	// started: name -> when this supervisor last started it.
	started map[string]time.Time
	// dirIno: name -> the inode of the hosts directory its dnsmasq
	// watches. dnsmasq's inotify watch dies with a removed directory and
	// neither a recreated one nor a SIGHUP brings it back: new entries
	// would never be served, so a new inode means a restart.
	dirIno map[string]uint64
	// starts and reloads count dnsmasq starts and SIGHUPs (Starts,
	// Reloads).
	starts, reloads atomic.Int64
}

type paths struct{ pidFile, hostsDir string }

type failure struct {
	count int
	last  time.Time
}

// New returns a supervisor.
func New(log *slog.Logger, networksPath string) *Supervisor {
	if log == nil {
		log = slog.Default()
	}
	return &Supervisor{NetworksPath: networksPath, StableAfter: DefaultStableAfter, log: log.With("component", "dnsmasq"),
		hosts: map[string]map[string]string{}, applied: map[string]paths{}, failures: map[string]failure{},
		started: map[string]time.Time{}, suspect: map[string]*suspicion{}, dirIno: map[string]uint64{}}
}

// suspicion is what changed in one hosts directory behind the
// supervisor's back.
type suspicion struct {
	all bool // re-read the whole directory
	// dirGone: the watch saw the hosts directory removed. A recreated
	// directory can reuse the old inode number, so the inode alone does
	// not prove dnsmasq still watches the directory that is there.
	dirGone bool
	files   map[string]bool // re-read these files
}

func (s *Supervisor) suspectFor(name string) *suspicion {
	if s.suspect[name] == nil {
		s.suspect[name] = &suspicion{files: map[string]bool{}}
	}
	return s.suspect[name]
}

// Recheck makes the next Apply re-read every hosts directory instead of
// trusting what it wrote (the agent's full resync).
func (s *Supervisor) Recheck() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.applied {
		s.suspectFor(name).all = true
	}
}

// Starts is how many dnsmasq processes this supervisor started: first
// starts and restarts after an exit, an argv change or a recreated hosts
// directory (the agent's novanet_agent_dnsmasq_starts_total). Safe to
// call from any goroutine, during an Apply too.
func (s *Supervisor) Starts() int64 { return s.starts.Load() }

// Reloads is how many SIGHUPs this supervisor sent for removed or changed
// host entries (novanet_agent_dnsmasq_reloads_total). Safe to call from
// any goroutine.
func (s *Supervisor) Reloads() int64 { return s.reloads.Load() }

// TakeChanges returns the descriptions of what was repaired or changed
// since the last call.
func (s *Supervisor) TakeChanges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.changes
	s.changes = nil
	return out
}

func (s *Supervisor) changed(format string, args ...any) {
	if len(s.changes) < 64 {
		s.changes = append(s.changes, fmt.Sprintf(format, args...))
	}
}

// Apply makes the running dnsmasqs and their host files match.
func (s *Supervisor) Apply(ctx context.Context, instances []plan.Dnsmasq) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	want := map[string]bool{}
	for _, d := range instances {
		want[d.PidFile] = true
		if err := s.applyOne(ctx, d, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
		}
	}
	s.stopUnwanted(want)
	return errors.Join(errs...)
}

// ApplyHosts is Apply after an incremental plan change (plan.Update):
// of the host entries it writes and removes only those changes name,
// trusting what it wrote for the rest unless the hosts watch or Recheck
// saw a change there, so one more instance is one file whatever the
// number of entries. The processes are checked as Apply checks them.
func (s *Supervisor) ApplyHosts(ctx context.Context, instances []plan.Dnsmasq, changes []plan.HostsChange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	want := map[string]bool{}
	for _, d := range instances {
		want[d.PidFile] = true
		hc := &plan.HostsChange{Dnsmasq: d.Name}
		if i := slices.IndexFunc(changes, func(c plan.HostsChange) bool { return c.Dnsmasq == d.Name }); i >= 0 {
			hc = &changes[i]
		}
		if err := s.applyOne(ctx, d, hc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
		}
	}
	s.stopUnwanted(want)
	return errors.Join(errs...)
}

// applyOne makes one dnsmasq and its host entries match d: all entries,
// or when hc is given (and what was written is trusted) those it names.
func (s *Supervisor) applyOne(ctx context.Context, d plan.Dnsmasq, hc *plan.HostsChange) error {
	if err := os.MkdirAll(d.HostsDir, 0o755); err != nil {
		return fmt.Errorf("create hosts dir: %w; check networks_path", err)
	}
	if err := os.MkdirAll(filepath.Dir(d.PidFile), 0o755); err != nil {
		return fmt.Errorf("create pid file dir: %w", err)
	}
	if err := traversable(d.HostsDir); err != nil {
		return err
	}
	s.applied[d.Name] = paths{pidFile: d.PidFile, hostsDir: d.HostsDir}
	s.watchHostsDir(d.Name, d.HostsDir)
	ino := inode(d.HostsDir)
	if s.dirIno[d.Name] == 0 {
		s.dirIno[d.Name] = ino // adopted: the directory it runs with
		s.noteRunDir(d.Name, d.HostsDir)
	}
	newDir := ino != s.dirIno[d.Name] || s.suspectFor(d.Name).dirGone
	if newDir {
		s.suspectFor(d.Name).all = true
	}
	var removedOrChanged bool
	var err error
	if sus := s.suspect[d.Name]; hc != nil && s.hosts[d.Name] != nil && (sus == nil || !sus.all && len(sus.files) == 0) {
		removedOrChanged, err = s.syncChanged(d, hc)
	} else {
		hc = nil
		removedOrChanged, err = s.syncHosts(d)
	}
	if err != nil {
		return err
	}
	pid, running := runningPid(d.PidFile)
	if running && newDir {
		s.log.Warn("hosts directory was removed and recreated; restarting dnsmasq so it watches the new one", "name", d.Name, "pid", pid)
		stop(pid)
		delete(s.started, d.Name)
		running = false
		s.changed("hosts directory %s was removed: recreated with %d entries, dnsmasq %s restarted to watch it", d.HostsDir, len(d.Hosts), d.Name)
	}
	if running {
		if args, ok := cmdline(pid); ok && slices.Equal(args, d.Args) {
			if removedOrChanged {
				// Never while an entry it should serve is missing: a
				// reload forgets it, and dnsmasq NAKs that VM's renewal.
				if missing := missingHosts(d, hc); missing != "" {
					return fmt.Errorf("not reloading: host entry %s is missing; retrying", missing)
				}
				if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
					return fmt.Errorf("reload (SIGHUP) pid %d: %w", pid, err)
				}
				s.reloads.Add(1)
				s.changed("dnsmasq %s reloaded (SIGHUP) to drop removed or changed host entries", d.Name)
				s.log.Info("reloaded for removed or changed hosts", "name", d.Name, "pid", pid)
			}
			if st, ok := s.started[d.Name]; !ok || time.Since(st) >= s.StableAfter {
				delete(s.failures, d.Name)
			}
			return nil
		} else if ok {
			s.log.Info("command line changed; restarting", "name", d.Name, "pid", pid)
			stop(pid)
			delete(s.started, d.Name)
		}
	} else if st, ok := s.started[d.Name]; ok {
		// It died since we started it; its reason is in its own log
		// (--log-facility, a file beside its pid file).
		up := time.Since(st)
		delete(s.started, d.Name)
		why := logTail(d)
		if up < s.StableAfter {
			s.fail(d.Name)
			s.log.Warn("dnsmasq exited soon after its start; backing off", "name", d.Name, "up_s", up.Seconds(),
				"failures", s.failures[d.Name].count, "backoff_s", s.backoff(d.Name).Seconds(), "its_log", why)
		} else {
			delete(s.failures, d.Name) // it had been stable: start afresh
			s.log.Warn("dnsmasq exited; restarting", "name", d.Name, "up_s", up.Seconds(), "its_log", why)
		}
	}
	// Back off after failed starts so a dnsmasq that cannot start (an
	// address not on the bridge yet) or dies at once does not spin.
	if wait := s.backoff(d.Name); wait > 0 {
		return fmt.Errorf("not running; next start attempt in %s (its log: %s)", wait.Round(time.Millisecond), logTail(d))
	}
	if err := s.start(ctx, d); err != nil {
		s.fail(d.Name)
		return fmt.Errorf("%w (its log: %s; next attempt in %s)", err, logTail(d), s.backoff(d.Name).Round(time.Millisecond))
	}
	s.started[d.Name] = time.Now()
	s.dirIno[d.Name] = ino
	s.noteRunDir(d.Name, d.HostsDir)
	if running {
		s.changed("dnsmasq %s had a different command line: restarted", d.Name)
	} else if !newDir {
		s.changed("dnsmasq %s was not running: started", d.Name)
	}
	return nil
}

func inode(path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// missingHosts names a planned host entry that is not in the directory
// ("" when all are there): of all entries, or of those hc wrote.
func missingHosts(d plan.Dnsmasq, hc *plan.HostsChange) string {
	hosts := d.Hosts
	if hc != nil {
		hosts = hc.Written
	}
	for _, h := range hosts {
		if _, err := os.Stat(filepath.Join(d.HostsDir, h.FileName)); err != nil {
			return h.FileName
		}
	}
	return ""
}

// DefaultStableAfter is how long a started dnsmasq must live for its
// failures to be forgotten. One that dies later served DHCP meanwhile and
// is restarted at once (an operator's kill -9 is repaired without a
// backoff); restarting such a one costs at most one start per 3 s.
const DefaultStableAfter = 3 * time.Second

func (s *Supervisor) fail(name string) {
	f := s.failures[name]
	s.failures[name] = failure{count: f.count + 1, last: time.Now()}
}

// backoff returns how long to wait before the next start: 1 s after the
// first failure, doubling up to 30 s.
func (s *Supervisor) backoff(name string) time.Duration {
	f := s.failures[name]
	if f.count == 0 {
		return 0
	}
	wait := min(time.Duration(1<<min(f.count-1, 5))*time.Second, 30*time.Second)
	return max(0, wait-time.Since(f.last))
}

func (s *Supervisor) start(ctx context.Context, d plan.Dnsmasq) error {
	_ = os.Remove(d.PidFile)
	r := runner.Exec{Netns: s.Netns, Env: []string{model.DHCPScriptBridgeEnv + "=" + d.Bridge}}
	cmd := r.Command(ctx, Binary, d.Args...)
	// dnsmasq forks into the background; its own session keeps it out of
	// the agent's process group and signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start failed: %s: %v: %s", runner.Describe(s.Netns, Binary, d.Args), err, strings.TrimSpace(out.String()))
	}
	// The parent exits once the daemon is set up; the pid file follows.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if pid, ok := runningPid(d.PidFile); ok {
			s.starts.Add(1)
			s.log.Info("started", "name", d.Name, "pid", pid, "bridge", d.Bridge)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("started but no live pid in %s: %s", d.PidFile, strings.TrimSpace(out.String()))
}

// syncHosts writes the host files that differ and removes the ones no
// longer wanted; it reports whether dnsmasq needs a SIGHUP. It trusts
// what it wrote except where the hosts watch or Recheck saw a change.
func (s *Supervisor) syncHosts(d plan.Dnsmasq) (bool, error) {
	have := s.hosts[d.Name]
	sus := s.suspect[d.Name]
	delete(s.suspect, d.Name)
	reload := false
	if have == nil || (sus != nil && sus.all) {
		have = map[string]string{}
		entries, err := os.ReadDir(d.HostsDir)
		if err != nil {
			return false, fmt.Errorf("read hosts dir: %w", err)
		}
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(d.HostsDir, e.Name())); err == nil {
				have[e.Name()] = strings.TrimSuffix(string(b), "\n")
			}
		}
		s.hosts[d.Name] = have
	} else if sus != nil {
		for f := range sus.files {
			b, err := os.ReadFile(filepath.Join(d.HostsDir, f))
			if err != nil {
				delete(have, f)
				continue
			}
			have[f] = strings.TrimSuffix(string(b), "\n")
		}
	}
	want := make(map[string]bool, len(d.Hosts))
	// Temporary files go next to the directory, never inside it: dnsmasq
	// reads every file that appears there.
	tmpDir := filepath.Dir(d.HostsDir)
	for _, h := range d.Hosts {
		want[h.FileName] = true
		old, ok := have[h.FileName]
		if ok && old == h.Line {
			continue
		}
		if err := s.writeHost(d, tmpDir, h); err != nil {
			return false, err
		}
		have[h.FileName] = h.Line
		switch {
		case ok:
			reload = true
			s.changed("host entry %s read %q: rewritten %q", h.FileName, old, h.Line)
		case sus != nil:
			s.changed("host entry %s was missing: rewritten", h.FileName)
		}
	}
	for f := range have {
		if want[f] {
			continue
		}
		if err := os.Remove(filepath.Join(d.HostsDir, f)); err != nil && !os.IsNotExist(err) {
			s.hosts[d.Name] = nil
			return false, fmt.Errorf("remove host entry: %w", err)
		}
		delete(have, f)
		reload = true
		if sus != nil {
			s.changed("host entry %s was not planned: removed", f)
		}
	}
	return reload, nil
}

// syncChanged writes and removes the entries hc names; it reports
// whether dnsmasq needs a SIGHUP (an entry removed or rewritten).
func (s *Supervisor) syncChanged(d plan.Dnsmasq, hc *plan.HostsChange) (bool, error) {
	have := s.hosts[d.Name]
	delete(s.suspect, d.Name)
	reload := false
	tmpDir := filepath.Dir(d.HostsDir)
	for _, h := range hc.Written {
		old, ok := have[h.FileName]
		if ok && old == h.Line {
			continue
		}
		if err := s.writeHost(d, tmpDir, h); err != nil {
			return false, err
		}
		have[h.FileName] = h.Line
		reload = reload || ok
	}
	for _, f := range hc.Removed {
		if _, ok := have[f]; !ok {
			continue
		}
		if err := os.Remove(filepath.Join(d.HostsDir, f)); err != nil && !os.IsNotExist(err) {
			s.hosts[d.Name] = nil
			return false, fmt.Errorf("remove host entry: %w", err)
		}
		delete(have, f)
		reload = true
	}
	return reload, nil
}

// writeHost installs one entry by rename, so dnsmasq never reads half a
// line.
func (s *Supervisor) writeHost(d plan.Dnsmasq, tmpDir string, h plan.HostEntry) error {
	tmp := filepath.Join(tmpDir, "."+d.Name+"."+h.FileName+".tmp")
	if err := os.WriteFile(tmp, []byte(h.Line+"\n"), 0o644); err != nil {
		s.hosts[d.Name] = nil // the directory may hold anything: re-read
		return fmt.Errorf("write host entry: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.HostsDir, h.FileName)); err != nil {
		s.hosts[d.Name] = nil
		return fmt.Errorf("install host entry: %w", err)
	}
	return nil
}

// traversable checks that dnsmasq, which drops to user nobody, can reach
// dir: a private parent directory would make it serve no host at all.
func traversable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("hosts dir %s: %w", dir, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("dnsmasq runs as nobody and cannot reach %s: %s is mode %o; chmod o+x %s (or choose another networks_path)", dir, d, fi.Mode().Perm(), d)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// stopUnwanted stops dnsmasqs this host no longer needs: the ones this
// supervisor applied before, and, after an agent restart, any nova-*.pid
// in NetworksPath (nova's names) left by an earlier agent.
func (s *Supervisor) stopUnwanted(want map[string]bool) {
	gone := map[string]paths{}
	for name, p := range s.applied {
		if !want[p.pidFile] {
			gone[name] = p
		}
	}
	if s.NetworksPath != "" {
		files, _ := filepath.Glob(filepath.Join(s.NetworksPath, "nova-*.pid"))
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".pid")
			if _, ok := gone[name]; !ok && !want[f] {
				gone[name] = paths{pidFile: f, hostsDir: filepath.Join(s.NetworksPath, name+".hosts.d")}
			}
		}
	}
	for name, p := range gone {
		if pid, ok := runningPid(p.pidFile); ok {
			s.log.Info("stopping dnsmasq no longer needed", "name", name, "pid_file", p.pidFile, "pid", pid)
			stop(pid)
		}
		_ = os.Remove(p.pidFile)
		_ = os.RemoveAll(p.hostsDir)
		delete(s.hosts, name)
		delete(s.suspect, name)
		delete(s.dirIno, name)
		delete(s.applied, name)
		delete(s.failures, name)
		delete(s.started, name)
	}
}

// Watch calls notify when a supervised dnsmasq has died, checking every
// interval, so the agent repairs it without waiting for its resync.
func (s *Supervisor) Watch(ctx context.Context, interval time.Duration, notify func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Only instances past their backoff: a dnsmasq that cannot start
		// would otherwise have the agent resync every interval.
		s.mu.Lock()
		pidFiles := make(map[string]string, len(s.applied))
		for n, p := range s.applied {
			if s.backoff(n) == 0 {
				pidFiles[n] = p.pidFile
			}
		}
		s.mu.Unlock()
		for n, f := range pidFiles {
			if _, ok := runningPid(f); !ok {
				s.log.Warn("dnsmasq is not running; repairing", "name", n, "pid_file", f)
				notify()
				break
			}
		}
	}
}

func runningPid(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	// A zombie or a recycled pid of another program is not ours.
	if !alive(pid) || !isDnsmasq(pid) {
		return 0, false
	}
	return pid, true
}

// cmdline returns a process's arguments after the program name.
func cmdline(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil, false
	}
	parts := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	return parts[1:], true
}

func isDnsmasq(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(b)) == "dnsmasq"
}

// alive reports whether pid is a live process: a dead daemon stays a
// zombie until whoever inherited it (pid 1, often a container's init that
// reaps lazily) collects it, and kill(pid, 0) still succeeds on it.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name, which may itself
	// contain ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

func stop(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 200; i++ {
		if !alive(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Release sends a DHCPRELEASE for addr/mac to the dnsmasq listening on
// server, from this host on the bridge, as dnsmasq-utils' dhcp_release
// does; dnsmasq frees the lease at once (and reports `del`).
func (s *Supervisor) Release(ctx context.Context, bridge string, server netip.Addr, mac string, addr netip.Addr) error {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return fmt.Errorf("release: bad MAC %q", mac)
	}
	pkt, err := dhcpv4.New(
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease),
		dhcpv4.WithHwAddr(hw),
		dhcpv4.WithClientIP(addr.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server.AsSlice())),
	)
	if err != nil {
		return fmt.Errorf("build release: %w", err)
	}
	send := func() error { return sendOnDevice(bridge, server, pkt.ToBytes()) }
	if s.Netns == "" {
		return send()
	}
	return netnsdo.Do(s.Netns, send)
}

func sendOnDevice(dev string, server netip.Addr, payload []byte) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return fmt.Errorf("release socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev); err != nil {
		return fmt.Errorf("bind release socket to %s: %w", dev, err)
	}
	to := &unix.SockaddrInet4{Port: 67, Addr: server.As4()}
	if err := unix.Sendto(fd, payload, 0, to); err != nil {
		return fmt.Errorf("send release to %s on %s: %w", server, dev, err)
	}
	return nil
}
