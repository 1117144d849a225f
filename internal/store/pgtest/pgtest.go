// Package pgtest starts a private PostgreSQL cluster for tests: initdb in
// a temporary directory, postgres on a free loopback port with its socket
// in that directory, one fresh database per test. The cluster is shared
// by every test of a test binary (started on first use) and stopped by
// Main, or when the test binary exits (the server gets SIGKILL'd by the
// kernel through Pdeathsig). PostgreSQL refuses to run as root, so as
// root the server runs as the "postgres" user.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
)

type cluster struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	logf   string
	exited chan struct{}
	err    error
	skip   string
}

var (
	once   sync.Once
	shared *cluster
	dbSeq  atomic.Int64
)

// Main runs the tests and then stops the shared cluster, if one was
// started. Use it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	return code
}

// Start returns the URL of a new, empty database on the shared cluster.
// The test is skipped when no PostgreSQL binaries are installed.
func Start(t testing.TB) string {
	t.Helper()
	once.Do(func() { shared = startCluster() })
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("start private postgresql: %v", shared.err)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	admin, err := sql.Open("pgx", shared.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", shared.url("postgres"))
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	return shared.url(name)
}

func (c *cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// binDir finds initdb and postgres: PATH first, then Debian's layout.
func binDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
	}
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(ms) > 0 {
		return filepath.Dir(ms[len(ms)-1])
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startCluster() *cluster {
	c := &cluster{}
	bin := binDir()
	if bin == "" {
		c.skip = "no PostgreSQL binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin: install postgresql to run the PostgreSQL store tests"
		return c
	}
	var cred *syscall.Credential
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			c.err = fmt.Errorf("running as root needs a 'postgres' user to run the server: %w", err)
			return c
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "novanet-pgtest-")
	if err != nil {
		c.err = err
		return c
	}
	c.dir = dir
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			c.err = err
			return c
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		c.err = fmt.Errorf("initdb: %w\n%s", err, out)
		return c
	}
	c.port, err = freePort()
	if err != nil {
		c.err = err
		return c
	}
	c.logf = filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(c.logf)
	if err != nil {
		c.err = err
		return c
	}
	defer logFile.Close()
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(c.port),
		"-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=64MB")
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.Dir = dir
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		c.err = fmt.Errorf("start postgres: %w", err)
		return c
	}
	exited := make(chan struct{})
	c.exited = exited
	go func() { c.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, _ := sql.Open("pgx", c.url("postgres"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		db.Close()
		if err == nil {
			return c
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(c.logf)
			c.err = fmt.Errorf("postgres exited during start-up:\n%s", log)
			return c
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(c.logf)
			c.err = fmt.Errorf("postgres not ready after 30s: %v\n%s", err, strings.TrimSpace(string(log)))
			c.stop()
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown: the data is thrown away
		select {
		case <-c.exited:
		case <-time.After(5 * time.Second):
			c.cmd.Process.Kill()
		}
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}
