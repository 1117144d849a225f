package manager_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"novanet/internal/model"
	"novanet/internal/store"
)

// Rules the instance firewall could not render as asked are refused with
// what to give, and nothing is stored (nova's "Not enough parameters to
// build a valid rule").
func TestIncompleteRulesSayWhatToGive(t *testing.T) {
	eachEngine(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		m := newManager(t, st, nil)
		p := model.Scope{ProjectID: "demo"}
		web, err := m.CreateSecurityGroup(ctx, p, "web", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			rule model.SecurityGroupRule
			want string
		}{
			{model.SecurityGroupRule{GroupID: web.ID, Protocol: "tcp"}, "give from_port and to_port"},
			{model.SecurityGroupRule{GroupID: web.ID, Protocol: "udp", FromPort: -1, ToPort: -1, SourceGroupID: web.ID}, "give from_port and to_port"},
			{model.SecurityGroupRule{GroupID: web.ID}, "give ip_protocol"},
			{model.SecurityGroupRule{GroupID: web.ID, FromPort: -1, ToPort: -1}, "or a cidr or group_id"},
		} {
			_, err := m.CreateSecurityGroupRule(ctx, p, c.rule)
			if !model.IsKind(err, model.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("rule %+v: %v; want an invalid-input error saying %q", c.rule, err, c.want)
			}
		}
		if _, err := m.CreateDefaultRule(ctx, model.SecurityGroupRule{Protocol: "tcp"}); err == nil || !strings.Contains(err.Error(), "give from_port and to_port") {
			t.Errorf("default rule tcp without ports: %v", err)
		}
		g, err := m.GetSecurityGroup(ctx, p, web.ID)
		if err != nil || len(g.Rules) != 0 {
			t.Fatalf("refused rules were stored: %+v %v", g.Rules, err)
		}
		// What is complete is taken: any protocol from a group or a cidr.
		for _, r := range []model.SecurityGroupRule{
			{GroupID: web.ID, SourceGroupID: web.ID},
			{GroupID: web.ID, CIDR: netip.MustParsePrefix("192.0.2.0/24")},
		} {
			if _, err := m.CreateSecurityGroupRule(ctx, p, r); err != nil {
				t.Errorf("rule %+v: %v", r, err)
			}
		}
	})
}
