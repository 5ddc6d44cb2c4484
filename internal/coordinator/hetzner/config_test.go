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
	if c.Image != "docker-ce" || *c.InstallDocker || !*c.PublicIPv4 || c.Arch != "amd64" || len(c.ServerTypes) == 0 || len(c.Locations) == 0 {
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
