package api

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"novanet/internal/model"
)

// Role is what a token may do.
type Role string

const (
	RoleAdmin   Role = "admin"   // everything; acts in its project (default "admin")
	RoleProject Role = "project" // one project's objects
	RoleAgent   Role = "agent"   // one host's /v1/hosts/<host>/... and its lease events
)

// Principal is who a token belongs to.
type Principal struct {
	Role      Role
	ProjectID string // admin and project tokens
	Host      string // agent tokens
}

// Scope is the model scope of a principal.
func (p Principal) Scope() model.Scope {
	return model.Scope{ProjectID: p.ProjectID, Admin: p.Role == RoleAdmin}
}

// String names the principal in logs without its token.
func (p Principal) String() string {
	switch p.Role {
	case RoleAgent:
		return "agent:" + p.Host
	case RoleAdmin:
		return "admin:" + p.ProjectID
	}
	return "project:" + p.ProjectID
}

// Tokens maps tokens to principals. The file format, one token a line:
//
//	# comment
//	<token> admin [<project_id>]     # project defaults to "admin"
//	<token> project <project_id>
//	<token> agent <host>
//
// Tokens are opaque strings of at least 16 characters without spaces. The
// file is re-read when its modification time changes (checked at most
// once a second) or when Reload is called (on SIGHUP).
type Tokens struct {
	path string

	mu      sync.Mutex // protects the following
	byHash  map[[32]byte]Principal
	mtime   time.Time
	checked time.Time
}

// LoadTokens reads a tokens file.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// StaticTokens builds a token table from a map (tests, a single
// configured admin token).
func StaticTokens(m map[string]Principal) *Tokens {
	t := &Tokens{byHash: map[[32]byte]Principal{}}
	for tok, p := range m {
		t.byHash[sha256.Sum256([]byte(tok))] = p
	}
	return t
}

// ParseTokens parses the tokens file format.
func ParseTokens(text, name string) (map[[32]byte]Principal, error) {
	out := map[[32]byte]Principal{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("%s:%d: %s; lines are '<token> admin [project]', '<token> project <project_id>' or '<token> agent <host>'", name, n, why)
		}
		if len(f[0]) < 16 {
			return nil, bad("token shorter than 16 characters")
		}
		if len(f) < 2 {
			return nil, bad("missing role")
		}
		var p Principal
		switch Role(f[1]) {
		case RoleAdmin:
			p = Principal{Role: RoleAdmin, ProjectID: "admin"}
			if len(f) == 3 {
				p.ProjectID = f[2]
			} else if len(f) > 3 {
				return nil, bad("too many fields")
			}
		case RoleProject:
			if len(f) != 3 {
				return nil, bad("a project token needs exactly one project id")
			}
			p = Principal{Role: RoleProject, ProjectID: f[2]}
		case RoleAgent:
			if len(f) != 3 {
				return nil, bad("an agent token needs exactly one host name")
			}
			p = Principal{Role: RoleAgent, Host: f[2]}
		default:
			return nil, bad(fmt.Sprintf("unknown role %q", f[1]))
		}
		h := sha256.Sum256([]byte(f[0]))
		if _, dup := out[h]; dup {
			return nil, bad("duplicate token")
		}
		out[h] = p
	}
	return out, sc.Err()
}

// Reload re-reads the tokens file. On error the old table stays in force.
func (t *Tokens) Reload() error {
	if t.path == "" {
		return nil
	}
	st, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("read tokens file: %w; create it or set tokens_file in [novanet]", err)
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("read tokens file: %w", err)
	}
	m, err := ParseTokens(string(data), t.path)
	if err != nil {
		return fmt.Errorf("parse tokens file: %w", err)
	}
	t.mu.Lock()
	t.byHash, t.mtime, t.checked = m, st.ModTime(), time.Now()
	t.mu.Unlock()
	return nil
}

// Lookup returns the principal of token.
func (t *Tokens) Lookup(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	t.maybeReload()
	// Hashing first makes the map lookup independent of the token's bytes.
	h := sha256.Sum256([]byte(token))
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.byHash[h]
	return p, ok
}

func (t *Tokens) maybeReload() {
	if t.path == "" {
		return
	}
	t.mu.Lock()
	due := time.Since(t.checked) > time.Second
	if due {
		t.checked = time.Now()
	}
	old := t.mtime
	t.mu.Unlock()
	if !due {
		return
	}
	if st, err := os.Stat(t.path); err == nil && !st.ModTime().Equal(old) {
		_ = t.Reload() // a broken edit keeps the old table; SIGHUP reports the error
	}
}
