package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// State is what `up` and `boot` made, persisted in the lab directory.
type State struct {
	Name       string         `json:"name"`
	Binary     string         `json:"binary"`
	Options    Options        `json:"options"`
	AdminToken string         `json:"admin_token"`
	PIDs       map[string]int `json:"pids"` // "serve", "agent-<host>"
	VMs        []VM           `json:"vms"`

	// ProjectToken acts in ProjectID, the VMs' project.
	ProjectToken string `json:"project_token"`
}

// load reads the lab's state from disk (empty when the lab is down).
func (l *Lab) load() error {
	l.st = State{}
	b, err := os.ReadFile(l.path("lab.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, &l.st)
	}
	if err != nil {
		return fmt.Errorf("lab %s: unreadable %s: %w; run `novanet lab down --name %s`", l.Name, l.path("lab.json"), err, l.Name)
	}
	return nil
}

// lockDir serializes the labs' state changes across processes (`novanet
// lab boot a & novanet lab boot b`). It flocks RootDir itself, so nothing

// is left behind by down.
func (l *Lab) lockDir() (unlock func(), err error) {
	if err := os.MkdirAll(RootDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", RootDir, err)
	}
	f, err := os.Open(RootDir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", RootDir, err)
	}
	return func() { f.Close() }, nil // closing the descriptor drops the lock
}

// lock takes lockDir and reloads the state under it.
func (l *Lab) lock() (unlock func(), err error) {
	if unlock, err = l.lockDir(); err != nil {
		return nil, err
	}
	if err := l.load(); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.path("lab.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.path("lab.json"))
}
