package dnsmasq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"novanet/internal/plan"
)

// hostsWatch is the inotify state: one watch per hosts directory and
// one per parent (to see a hosts directory removed or recreated).
type hostsWatch struct {
	fd   int
	dirs map[int]string // watch descriptor -> dnsmasq name (its hosts dir)
	// parents: watch descriptor -> hosts dir base name -> dnsmasq name.
	parents map[int]map[string]string
	paths   map[string]int // watched path -> descriptor
	// runDir: dnsmasq name -> the descriptor of the hosts directory its
	// running dnsmasq was started with (or adopted on).
	runDir map[string]int
}

const (
	dirEvents = unix.IN_CREATE | unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
	parentEvents = unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR
)

// WatchHosts reports, until ctx ends, every change to a supervised hosts
// directory or its entries (inotify), and marks what changed to be re-read
// at the next Apply: a removed or edited entry is repaired within the
// second instead of at a periodic re-read. notify gets a description.
// The supervisor's own writes notify as well; the Apply they cause finds
// the entry as written and does nothing.
func (s *Supervisor) WatchHosts(ctx context.Context, notify func(reason string)) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	s.mu.Lock()
	s.watch = &hostsWatch{fd: fd, dirs: map[int]string{}, parents: map[int]map[string]string{}, paths: map[string]int{}, runDir: map[string]int{}}
	for name, p := range s.applied {
		s.watchHostsDir(name, p.hostsDir)
		if ino := s.dirIno[name]; ino != 0 && inode(p.hostsDir) == ino {
			s.noteRunDir(name, p.hostsDir)
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.watch = nil
		s.mu.Unlock()
		unix.Close(fd)
	}()
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 300); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll inotify: %w", err)
		}
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read inotify: %w", err)
		}
		for _, why := range s.hostsEvents(buf[:n]) {
			notify(why)
		}
	}
	return nil
}

// watchHostsDir adds the inotify watches for one hosts directory (no-op
// without WatchHosts, or when already watched). Callers hold s.mu.
func (s *Supervisor) watchHostsDir(name, dir string) {
	w := s.watch
	if w == nil {
		return
	}
	if _, ok := w.paths[dir]; !ok {
		if wd, err := unix.InotifyAddWatch(w.fd, dir, dirEvents); err == nil {
			w.dirs[wd] = name
			w.paths[dir] = wd
		} else {
			s.log.Warn("cannot watch hosts directory; its entries are repaired at the next full resync", "dir", dir, "err", err)
		}
	}
	parent := filepath.Dir(dir)
	if wd, ok := w.paths[parent]; ok && w.parents[wd] != nil {
		w.parents[wd][filepath.Base(dir)] = name
		return
	}
	if wd, err := unix.InotifyAddWatch(w.fd, parent, parentEvents); err == nil {
		w.paths[parent] = wd
		if w.parents[wd] == nil {
			w.parents[wd] = map[string]string{}
		}
		w.parents[wd][filepath.Base(dir)] = name
	}
}

// hostsEvents marks what the events in buf changed and describes them.
func (s *Supervisor) hostsEvents(buf []byte) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watch
	var out []string
	add := func(why string) {
		if len(out) < 8 {
			out = append(out, why)
		}
	}
	for len(buf) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(buf) {
			break
		}
		file := string(bytes.TrimRight(buf[unix.SizeofInotifyEvent:end], "\x00"))
		buf = buf[end:]
		wd, mask := int(ev.Wd), ev.Mask
		if mask&unix.IN_Q_OVERFLOW != 0 {
			for name := range s.applied {
				s.suspectFor(name).all = true
			}
			add("inotify queue overflowed")
			continue
		}
		if name, ok := w.dirs[wd]; ok {
			switch {
			case mask&unix.IN_IGNORED != 0:
				// The directory is gone; its watch with it.
				delete(w.dirs, wd)
				for p, d := range w.paths {
					if d == wd {
						delete(w.paths, p)
					}
				}
			case mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
				// Forget the path now, so the Apply that recreates the
				// directory watches the new one.
				for p, d := range w.paths {
					if d == wd {
						delete(w.paths, p)
					}
				}
				s.suspectFor(name).all = true
				if w.runDir[name] == wd {
					// The directory dnsmasq watches is gone, whatever
					// inode number its replacement gets.
					s.suspectFor(name).dirGone = true
					delete(w.runDir, name)
				}
				add("hosts directory of " + name + " was removed")
			case file != "" && !strings.HasPrefix(file, "."):
				s.suspectFor(name).files[file] = true
				add(fmt.Sprintf("host entry %s of %s %s", file, name, eventVerb(mask)))
			}
			continue
		}
		if m, ok := w.parents[wd]; ok && mask&unix.IN_ISDIR != 0 {
			// Apply compares the directory's inode with the one dnsmasq
			// runs with; here it only needs to run.
			if name, ok := m[file]; ok {
				s.suspectFor(name).all = true
				if mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 {
					add("hosts directory of " + name + " was removed")
				} else {
					add("hosts directory of " + name + " was created")
				}
			}
			if mask&unix.IN_IGNORED != 0 {
				delete(w.parents, wd)
			}
		}
	}
	return out
}

func eventVerb(mask uint32) string {
	switch {
	case mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
		return "was removed"
	case mask&unix.IN_CREATE != 0, mask&unix.IN_MOVED_TO != 0:
		return "was created"
	}
	return "was written"
}

// logTail is the end of a dnsmasq's own log: why it died or would not
// start, for the agent's log.
func logTail(d plan.Dnsmasq) string {
	if d.LogFile == "" {
		return "(no log file)"
	}
	f, err := os.Open(d.LogFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 600
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, 0)
	}
	b := make([]byte, max)
	n, _ := f.Read(b)
	lines := strings.Split(strings.TrimSpace(string(b[:n])), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// noteRunDir records that name's dnsmasq runs with the hosts directory
// now at dir. Callers hold s.mu.
func (s *Supervisor) noteRunDir(name, dir string) {
	if w := s.watch; w != nil {
		if wd, ok := w.paths[dir]; ok {
			w.runDir[name] = wd
		}
	}
}
