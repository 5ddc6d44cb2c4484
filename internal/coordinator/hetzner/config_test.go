package hetzner

import (
	"strings"
	"testing"
)

func TestConfigDefaultsAndErrors(t *testing.T) {
	c := Config{Token: "t"}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.SelfDestruct != "poweroff" || c.Image != "docker-ce" || *c.InstallDocker || !*c.PublicIPv4 || c.Arch != "amd64" || len(c.ServerTypes) == 0 || len(c.Locations) == 0 {
		t.Errorf("defaults = %+v", c)
	}
	plain := Config{Token: "t", Image: "debian-12"}
	if err := plain.setDefaults(); err != nil || !*plain.InstallDocker {
		t.Errorf("a plain image must install Docker by default (err %v)", err)
	}
	bad := Config{ServerTypes: []string{"cax11"}, Labels: map[string]string{"owner": "x", "bad key!": "v"}}
	err := bad.setDefaults()
	for _, want := range []string{"HCLOUD_TOKEN", `"cax11" is not amd64`, `"owner" is Sortie's own`, `"bad key!"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
}

// TestDeleteModeConfig: the delete mode refuses to start without a token of
// its own, or with the coordinator's token.
func TestDeleteModeConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no token", Config{Token: "a", SelfDestruct: "delete"}, "SORTIE_HCLOUD_DELETE_TOKEN"},
		{"same token", Config{Token: "a", SelfDestruct: "delete", DeleteToken: "a"}, "must not be the coordinator's own token"},
		{"unknown mode", Config{Token: "a", SelfDestruct: "explode"}, `self-destruct mode "explode"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.setDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	ok := Config{Token: "a", SelfDestruct: "delete", DeleteToken: "b"}
	if err := ok.setDefaults(); err != nil {
		t.Fatal(err)
	}
	p := &Provider{cfg: ok}
	if sd := p.SelfDelete("sortie-x"); sd == nil || sd.Token != "b" || sd.Server != "sortie-x" {
		t.Errorf("SelfDelete = %+v, want the delete token and the server's name", sd)
	}
	if sd := (&Provider{cfg: Config{SelfDestruct: "poweroff"}}).SelfDelete("sortie-x"); sd != nil {
		t.Errorf("the poweroff mode hands the VM a token: %+v", sd)
	}
}
