package lab

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func (l *Lab) startDaemon(key, host, cmd string) error {
	logf, err := os.OpenFile(l.path(host, cmd+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command("ip", "netns", "exec", l.hostNS(host), l.st.Binary, "--config-file", l.path(host, "novanet.conf"), cmd)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s on %s: %w", cmd, host, err)
	}
	go func() { _ = c.Wait() }() // reap if it exits while we run
	l.st.PIDs[key] = c.Process.Pid
	return l.save()
}

// StopDaemon stops serve ("serve") or an agent ("agent-compute-1").
func (l *Lab) StopDaemon(key string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	pid, ok := l.st.PIDs[key]
	if !ok {
		return fmt.Errorf("no %s in lab %s", key, l.Name)
	}
	killOurs(pid, l.daemonMark(key))
	delete(l.st.PIDs, key)
	return l.save()
}

// StartDaemon starts serve or an agent again after StopDaemon.
func (l *Lab) StartDaemon(key string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if !l.IsUp() {
		return fmt.Errorf("lab %s is not up: run `novanet lab up` first", l.Name)
	}
	if _, ok := l.st.PIDs[key]; ok {
		return fmt.Errorf("%s of lab %s is already started", key, l.Name)
	}
	if key == "serve" {
		return l.startDaemon("serve", "controller", "serve")
	}
	h, ok := strings.CutPrefix(key, "agent-")
	if !ok || !slices.Contains(Hosts, h) {
		return fmt.Errorf("unknown daemon %q: use serve or agent-<host>", key)
	}
	return l.startDaemon(key, h, "agent")
}

// daemonMark is what the command line of serve or an agent of this lab
// holds and no other process's does: its config file's path.
func (l *Lab) daemonMark(key string) string {
	if key == "serve" {
		return l.path("controller", "novanet.conf")
	}
	return l.path(strings.TrimPrefix(key, "agent-"), "novanet.conf")
}

// clientMark is the same for a VM's DHCP client: its script's directory.
func (l *Lab) clientMark(vm string) string { return l.path("vms", vm) + "/" }

// alive reports whether pid runs and its command line contains mark.
func alive(pid int, mark string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), mark)
}

// killOurs kills pid if its command line contains mark (a recycled pid of
// another program is left alone) and waits for it.
func killOurs(pid int, mark string) {
	if !alive(pid, mark) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	// A zombie has an empty command line: it has exited even when its
	// reaper (init, once the CLI that started it is gone) takes its time.
	for i := 0; i < 100; i++ {
		if !alive(pid, mark) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
