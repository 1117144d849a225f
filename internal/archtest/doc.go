// Package archtest holds the architecture's tests: deps_test.go checks
// every package's imports against docs/ARCHITECTURE.md's rules of the
// house. It has no code of its own.
package archtest
