package iptables

import "strconv"

// chainEdit returns the restore lines that turn an existing chain's rules
// from have into want by deleting and inserting only the rules between
// their common prefix and suffix (by position, in --noflush mode), or nil
// when rewriting the chain whole is no longer than that. Adding one
// instance's jump to a nova-compute-local of 5,000 then costs one line,
// not 5,001.
func chainEdit(chain string, have, want []string) []string {
	p := 0
	for p < len(have) && p < len(want) && have[p] == want[p] {
		p++
	}
	s := 0
	for s < len(have)-p && s < len(want)-p && have[len(have)-1-s] == want[len(want)-1-s] {
		s++
	}
	dels, ins := len(have)-p-s, want[p:len(want)-s]
	if dels+len(ins) >= len(want)+1 {
		return nil
	}
	out := make([]string, 0, dels+len(ins))
	for range dels {
		out = append(out, "-D "+chain+" "+strconv.Itoa(p+1))
	}
	for i, spec := range ins {
		out = append(out, "-I "+chain+" "+strconv.Itoa(p+1+i)+" "+spec)
	}
	return out
}
