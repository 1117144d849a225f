package runner

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestRunSetsCLocaleAndNamesTheCommandInErrors(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	out, err := Exec{}.Run(context.Background(), nil, "sh", "-c", `echo "$LC_ALL"`)
	if err != nil || strings.TrimSpace(string(out)) != "C" {
		t.Fatalf("LC_ALL in the command = %q, %v; want C", out, err)
	}
	_, err = Exec{}.Run(context.Background(), strings.NewReader("x"), "sh", "-c", `cat >/dev/null; echo broken >&2; exit 3`)
	var re *Error
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "`sh -c") || Output(err) != "broken" {
		t.Fatalf("err = %v (output %q); want the command and its output", err, Output(err))
	}
}
