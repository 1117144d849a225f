package model

import (
	"errors"
	"fmt"
)

// ErrorKind classifies failures so the API can map them to HTTP status
// codes without matching strings.
type ErrorKind int

const (
	ErrInvalid      ErrorKind = iota + 1 // 400: the request is malformed or violates a rule
	ErrForbidden                         // 403: the caller may not do this
	ErrNotFound                          // 404
	ErrConflict                          // 409: in use, duplicate, overlapping
	ErrExhausted                         // 409: no free address or MAC (nova: NoMoreFixedIps)
	ErrQuota                             // 403: over quota (OpenStack uses 403 for quota)
	ErrUnauthorized                      // 401
)

// Error is a failure with a kind and an operator-facing message that says
// what to fix.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Errorf builds an *Error of the given kind.
func Errorf(kind ErrorKind, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, or 0 if err is not (wrapping) an *Error.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k ErrorKind) bool { return KindOf(err) == k }

// Scope is who is calling: an admin or a member of one project.
type Scope struct {
	ProjectID string
	Admin     bool
}

// Sees reports whether the scope may see objects of project p.
func (s Scope) Sees(p string) bool { return s.Admin || (s.ProjectID != "" && s.ProjectID == p) }
