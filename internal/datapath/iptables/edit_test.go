package iptables

import (
	"slices"
	"testing"
)

func TestChainEditTouchesOnlyTheDifference(t *testing.T) {
	for _, c := range []struct {
		name       string
		have, want []string
		edit       []string
	}{
		{"append", []string{"a", "b", "c"}, []string{"a", "b", "c", "d"}, []string{"-I x 4 d"}},
		{"insert in the middle", []string{"a", "b", "c"}, []string{"a", "n", "b", "c"}, []string{"-I x 2 n"}},
		{"remove", []string{"a", "b", "c", "d"}, []string{"a", "c", "d"}, []string{"-D x 2"}},
		{"replace one", []string{"a", "b", "c", "d"}, []string{"a", "z", "c", "d"}, []string{"-D x 2", "-I x 2 z"}},
		{"rewrite is shorter", []string{"a", "b"}, []string{"c"}, nil},
		{"into an empty chain", nil, []string{"a"}, []string{"-I x 1 a"}},
	} {
		if got := chainEdit("x", c.have, c.want); !slices.Equal(got, c.edit) {
			t.Errorf("%s: %q, want %q", c.name, got, c.edit)
		}
	}
}
