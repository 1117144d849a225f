// Package store persists novanet's state in SQLite (the default, one file)
// or PostgreSQL (shared by several servers). Both engines go through one
// database/sql code path: queries are written with '?' placeholders and
// rebound to $n for PostgreSQL. The schema lives in embedded, numbered
// migrations applied at Open. Every change runs in a write transaction
// (Update); allocation is made safe under concurrency by the database:
// SQLite serialises writers (BEGIN IMMEDIATE), PostgreSQL locks the chosen
// free row with FOR UPDATE SKIP LOCKED, and unique constraints on
// addresses and MACs make a double allocation impossible either way.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL engine behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is an open database with novanet's schema.
type Store struct {
	db      *sql.DB
	dialect Dialect
	// writeMu serialises this process's SQLite writers so they queue in Go
	// instead of spinning in SQLite's busy handler; other processes still
	// wait through busy_timeout.
	writeMu sync.Mutex
	// stmts caches prepared statements by query text: a boot runs about
	// fifteen small statements, and parsing them again each time cost
	// more than executing them.
	stmts sync.Map // string -> *sql.Stmt
}

// prepared returns the cached statement for q. On a miss it returns nil
// and prepares q in the background: preparing through the pool from
// inside a transaction would need a second connection, and with every
// connection held by a transaction doing the same, nothing would move.
func (s *Store) prepared(q string) *sql.Stmt {
	if st, ok := s.stmts.Load(q); ok {
		if st, ok := st.(*sql.Stmt); ok {
			return st
		}
		return nil // being prepared
	}
	if _, loaded := s.stmts.LoadOrStore(q, preparing{}); !loaded {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := s.db.PrepareContext(ctx, q)
			if err != nil {
				s.stmts.Delete(q) // try again on a later call
				return
			}
			s.stmts.Store(q, st)
		}()
	}
	return nil
}

// preparing marks a statement whose preparation is under way.
type preparing struct{}

// Open opens (creating if needed) the store at url and applies pending
// migrations. url is a file path or sqlite:///abs/path.db for SQLite, or
// postgres://... / postgresql://... for PostgreSQL.
func Open(ctx context.Context, url string) (*Store, error) {
	var s *Store
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err := sql.Open("pgx", url)
		if err != nil {
			return nil, fmt.Errorf("open postgresql store: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		s = &Store{db: db, dialect: Postgres}
	default:
		path := strings.TrimPrefix(url, "sqlite://")
		if path == "" {
			return nil, fmt.Errorf("empty store path: set database to a file path or a postgres:// URL")
		}
		db, err := sql.Open("sqlite", sqliteDSN(path))
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
		}
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		db.SetConnMaxIdleTime(0)
		s = &Store{db: db, dialect: SQLite}
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to %s store: %w; check the database URL and that the server is running", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func sqliteDSN(path string) string {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// A small page cache per connection: the working set of an allocation
	// is a handful of pages, and 8 connections of the default 2 MB would
	// cost more than the rest of the server.
	q.Add("_pragma", "cache_size(-512)")
	// The path is a URI path: '?' would start the query and '#' a
	// fragment, silently opening another file ("/tmp/a#1/n.db" opened
	// "/tmp/a"), and '%' would be decoded.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + q.Encode()
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool {
		if st, ok := st.(*sql.Stmt); ok {
			st.Close()
		}
		return true
	})
	return s.db.Close()
}

// Dialect reports the engine.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the handle for tests and benchmarks that prepare data in bulk.
func (s *Store) DB() *sql.DB { return s.db }

// Rebind rewrites '?' placeholders for the store's engine.
func (s *Store) Rebind(q string) string { return rebind(s.dialect, q) }

func rebind(d Dialect, q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Tx is one transaction. Its query methods take '?' placeholders.
type Tx struct {
	tx      *sql.Tx
	s       *Store
	dialect Dialect
	write   bool
}

// stmt returns q prepared on this transaction's connection (database/sql
// prepares a cached statement once per connection, on the connection the
// transaction already holds), or nil when it is not cached yet: the caller
// then runs q directly.
func (t *Tx) stmt(ctx context.Context, q string) *sql.Stmt {
	st := t.s.prepared(q)
	if st == nil {
		return nil
	}
	return t.tx.StmtContext(ctx, st)
}

// Dialect reports the engine.
func (t *Tx) Dialect() Dialect { return t.dialect }

// Exec runs a statement.
func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q = rebind(t.dialect, q)
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// Query runs a query.
func (t *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = rebind(t.dialect, q)
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

// QueryRow runs a query returning at most one row.
func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = rebind(t.dialect, q)
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// maxAttempts bounds retries of transactions that failed only because of
// concurrency (PostgreSQL serialization failures and deadlocks, SQLite
// busy): the work is redone from the start.
const maxAttempts = 8

// Update runs fn in a write transaction, committing if it returns nil.
// fn may run more than once when the engine reports a transient conflict,
// so it must not have side effects outside the transaction.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, true, fn)
}

// View runs fn in a read-only transaction (a consistent snapshot on
// PostgreSQL with repeatable read).
func (s *Store) View(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, false, fn)
}

func (s *Store) run(ctx context.Context, write bool, fn func(*Tx) error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err = s.runOnce(ctx, write, fn)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

func (s *Store) runOnce(ctx context.Context, write bool, fn func(*Tx) error) (err error) {
	var opts *sql.TxOptions
	if s.dialect == SQLite && write {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	if s.dialect == Postgres && !write {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	if s.dialect == SQLite && !write {
		// A read-only transaction is deferred despite _txlock=immediate,
		// so readers never queue behind writers (WAL).
		opts = &sql.TxOptions{ReadOnly: true}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t := &Tx{tx: tx, s: s, dialect: s.dialect, write: write}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// transient reports errors worth retrying the whole transaction for.
func transient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// Now is the store's clock in its on-disk unit (unix microseconds).
func Now() int64 { return time.Now().UnixMicro() }

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}
