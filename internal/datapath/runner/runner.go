// Package runner runs the datapath's external commands (iptables-save,
// iptables-restore, dnsmasq, modprobe, sysctl reads in a namespace).
// Every command runs with LC_ALL=C, so output that is parsed or quoted in
// an error reads the same on every host; inside a named network namespace
// when one is set; and its error names the command and carries its
// output.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Runner runs one command and returns its standard output.
type Runner interface {
	Run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error)
}

// Exec runs commands on this host, inside Netns when it is set.
type Exec struct {
	Netns string
	// Env is added to the environment (after LC_ALL=C).
	Env []string
}

// Command builds the command without running it, for callers that need
// process attributes of their own (dnsmasq's session).
func (e Exec) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if e.Netns != "" {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.Netns, name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), e.Env...)
	return cmd
}

// Run runs the command; a failure is an *Error.
func (e Exec) Run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := e.Command(ctx, name, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &Error{Command: Describe(e.Netns, name, args), Err: err,
			Output: strings.TrimSpace(stderr.String() + "\n" + stdout.String())}
	}
	return stdout.Bytes(), nil
}

// RunCombined runs the command and returns what it printed on standard
// output and standard error together, for programs that report results
// on standard error (conntrack's "N flow entries have been deleted"). A
// failure is an *Error carrying that output.
func (e Exec) RunCombined(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := e.Command(ctx, name, args...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), &Error{Command: Describe(e.Netns, name, args), Err: err, Output: strings.TrimSpace(out.String())}
	}
	return out.Bytes(), nil
}

// Error is a command that failed: which, why, and what it said.
type Error struct {
	Command string
	Err     error
	Output  string
}

func (e *Error) Error() string {
	if e.Output == "" {
		return fmt.Sprintf("%s: %v", e.Command, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Command, e.Err, e.Output)
}

func (e *Error) Unwrap() error { return e.Err }

// Output returns the output a failed command printed ("" for other
// errors).
func Output(err error) string {
	var re *Error
	if errors.As(err, &re) {
		return re.Output
	}
	return ""
}

// Describe renders a command line for messages.
func Describe(netns, name string, args []string) string {
	s := strings.Join(append([]string{name}, args...), " ")
	if netns != "" {
		s += " (in network namespace " + netns + ")"
	}
	return "`" + s + "`"
}
