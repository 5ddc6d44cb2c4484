package hcloudfake_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

func TestServerLifecycle(t *testing.T) {
	f, c := start(t)
	ctx := ctxT(t)

	res, _, err := c.Server.Create(ctx, createOpts("run-01"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got, want := res.Server.Status, hcloud.ServerStatusInitializing; got != want {
		t.Errorf("status after create: got %q, want %q", got, want)
	}
	if got, want := res.Action.Command, "create_server"; got != want {
		t.Errorf("action: got %q, want %q", got, want)
	}
	if got, want := res.Action.Status, hcloud.ActionStatusRunning; got != want {
		t.Errorf("action status: got %q, want %q", got, want)
	}
	if len(res.NextActions) != 1 || res.NextActions[0].Command != "start_server" {
		t.Errorf("next actions: got %+v, want one start_server", res.NextActions)
	}
	if res.RootPassword == "" {
		t.Error("root password empty for a server without SSH keys")
	}
	if err := c.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
		t.Fatalf("wait: %v", err)
	}

	got, _, err := c.Server.GetByID(ctx, res.Server.ID)
	if err != nil || got == nil {
		t.Fatalf("get: %v, %v", got, err)
	}
	if got.Status != hcloud.ServerStatusRunning {
		t.Errorf("status after create action: got %q, want running", got.Status)
	}
	if got.ServerType.Name != "cx23" || got.Location.Name != "fsn1" || got.Image.Name != "debian-12" {
		t.Errorf("got type %q location %q image %q", got.ServerType.Name, got.Location.Name, got.Image.Name)
	}
	if got.PublicNet.IPv4.IP == nil {
		t.Error("no public IPv4")
	}

	byLabel, err := c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "run=run-01"}})
	if err != nil || len(byLabel) != 1 || byLabel[0].ID != got.ID {
		t.Fatalf("list by label: got %v, %v", byLabel, err)
	}
	byName, _, err := c.Server.GetByName(ctx, "run-01")
	if err != nil || byName == nil || byName.ID != got.ID {
		t.Fatalf("get by name: got %v, %v", byName, err)
	}
	if snap := f.Servers(); len(snap) != 1 || snap[0].UserData != createOpts("").UserData {
		t.Errorf("Servers(): got %+v", snap)
	}

	del, _, err := c.Server.DeleteWithResult(ctx, got)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if del.Action.Command != "delete_server" {
		t.Errorf("delete action: got %q", del.Action.Command)
	}
	if err := c.Action.WaitFor(ctx, del.Action); err != nil {
		t.Fatalf("wait for delete: %v", err)
	}
	if gone, _, err := c.Server.GetByID(ctx, got.ID); err != nil || gone != nil {
		t.Errorf("get after delete: got %v, %v; want nil, nil", gone, err)
	}
	left, err := c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "sortie.dev/owner=test"}})
	if err != nil || len(left) != 0 {
		t.Errorf("servers left: %v, %v", left, err)
	}
	if snap := f.Servers(); len(snap) != 0 {
		t.Errorf("Servers() after delete: %+v", snap)
	}
}

func TestServerActionsPerResource(t *testing.T) {
	_, c := start(t)
	ctx := ctxT(t)
	srv := mustCreate(t, c, createOpts("acts"))

	all, err := c.Server.Action.AllFor(ctx, srv, hcloud.ActionListOpts{})
	if err != nil {
		t.Fatalf("server actions: %v", err)
	}
	var cmds []string
	for _, a := range all {
		cmds = append(cmds, a.Command+":"+string(a.Status))
	}
	if diff := cmp.Diff([]string{"create_server:success", "start_server:success"}, cmds); diff != "" {
		t.Errorf("server actions (-want +got):\n%s", diff)
	}
	one, _, err := c.Server.Action.GetByID(ctx, all[0].ID)
	if err != nil || one == nil || one.ID != all[0].ID {
		t.Errorf("GET /servers/actions/{id}: %v, %v", one, err)
	}
	viaGlobal, _, err := c.Action.GetByID(ctx, all[1].ID)
	if err != nil || viaGlobal == nil || viaGlobal.Command != "start_server" {
		t.Errorf("GET /actions/{id}: %v, %v", viaGlobal, err)
	}
}

func TestDuplicateNameIsUniquenessError(t *testing.T) {
	_, c := start(t)
	mustCreate(t, c, createOpts("twin"))
	_, _, err := c.Server.Create(ctxT(t), createOpts("twin"))
	wantAPIError(t, err, hcloud.ErrorCodeUniquenessError)
}

func TestCreateValidation(t *testing.T) {
	_, c := start(t)
	tests := []struct {
		name   string
		modify func(*hcloud.ServerCreateOpts)
		field  string
	}{
		{"underscore in name", func(o *hcloud.ServerCreateOpts) { o.Name = "run_01" }, "name"},
		{"space in name", func(o *hcloud.ServerCreateOpts) { o.Name = "my server" }, "name"},
		{"leading dash", func(o *hcloud.ServerCreateOpts) { o.Name = "-run" }, "name"},
		{"empty label in name", func(o *hcloud.ServerCreateOpts) { o.Name = "a..b" }, "name"},
		{"name label over 63", func(o *hcloud.ServerCreateOpts) { o.Name = strings.Repeat("a", 64) }, "name"},
		{"label key with space", func(o *hcloud.ServerCreateOpts) { o.Labels = map[string]string{"bad key": "x"} }, "labels"},
		{"label value with slash", func(o *hcloud.ServerCreateOpts) { o.Labels = map[string]string{"k": "a/b"} }, "labels"},
		{"label value leading dash", func(o *hcloud.ServerCreateOpts) { o.Labels = map[string]string{"k": "-a"} }, "labels"},
		{"label value over 63", func(o *hcloud.ServerCreateOpts) { o.Labels = map[string]string{"k": strings.Repeat("v", 64)} }, "labels"},
		{"label prefix not DNS", func(o *hcloud.ServerCreateOpts) { o.Labels = map[string]string{"Ex_ample/k": "v"} }, "labels"},
		{"reserved label prefix", func(o *hcloud.ServerCreateOpts) { o.Labels = map[string]string{"hetzner.cloud/k": "v"} }, "labels"},
		{"user data 33 KiB", func(o *hcloud.ServerCreateOpts) { o.UserData = strings.Repeat("#", 33<<10) }, "user_data"},
		{"unknown server type", func(o *hcloud.ServerCreateOpts) { o.ServerType = &hcloud.ServerType{Name: "cx11"} }, "server_type"},
		{"unknown location", func(o *hcloud.ServerCreateOpts) { o.Location = &hcloud.Location{Name: "ash1"} }, "location"},
		{"unknown image", func(o *hcloud.ServerCreateOpts) { o.Image = &hcloud.Image{Name: "windows-11"} }, "image"},
		{"image of the other architecture", func(o *hcloud.ServerCreateOpts) { o.Image = &hcloud.Image{ID: 161547270} }, "image"},
		{"unknown ssh key", func(o *hcloud.ServerCreateOpts) { o.SSHKeys = []*hcloud.SSHKey{{ID: 999}} }, "ssh_keys"},
		{"type not offered there", func(o *hcloud.ServerCreateOpts) {
			o.ServerType, o.Location = &hcloud.ServerType{Name: "cax11"}, &hcloud.Location{Name: "ash"}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := createOpts("valid-name")
			tt.modify(&opts)
			_, _, err := c.Server.Create(ctxT(t), opts)
			apiErr := wantAPIError(t, err, hcloud.ErrorCodeInvalidInput)
			if tt.field == "" {
				return
			}
			details, ok := apiErr.Details.(hcloud.ErrorDetailsInvalidInput)
			if !ok || len(details.Fields) == 0 || details.Fields[0].Name != tt.field {
				t.Errorf("details: got %+v, want field %q", apiErr.Details, tt.field)
			}
		})
	}
}

func TestCreateValidAtTheLimits(t *testing.T) {
	_, c := start(t)
	opts := createOpts("Run-01.example.com")
	opts.UserData = strings.Repeat("#", 32<<10)
	opts.Labels = map[string]string{
		"example.com/key": strings.Repeat("v", 63), "just-a-key": "", "A_b.c": "x",
	}
	opts.ServerType, opts.Image = &hcloud.ServerType{ID: 45}, &hcloud.Image{Name: "docker-ce"}
	srv := mustCreate(t, c, opts)
	if srv.Image.Architecture != hcloud.ArchitectureARM {
		t.Errorf("image for an arm server type: got %q, want arm", srv.Image.Architecture)
	}
}

func TestListServers(t *testing.T) {
	_, c := start(t)
	ctx := ctxT(t)
	for _, l := range []struct{ name, env, tier string }{
		{"a", "prod", "web"}, {"b", "prod", ""}, {"c", "staging", "db"},
	} {
		opts := createOpts(l.name)
		opts.Labels = map[string]string{"env": l.env}
		if l.tier != "" {
			opts.Labels["tier"] = l.tier
		}
		mustCreate(t, c, opts)
	}
	tests := []struct {
		selector string
		want     []string
	}{
		{"", []string{"a", "b", "c"}},
		{"env=prod", []string{"a", "b"}},
		{"env==prod", []string{"a", "b"}},
		{"env!=prod", []string{"c"}},
		{"tier", []string{"a", "c"}},
		{"!tier", []string{"b"}},
		{"env=prod,tier", []string{"a"}},
		{"env=prod, !tier", []string{"b"}},
		{"env in (staging,dev)", []string{"c"}},
		{"env notin (staging)", []string{"a", "b"}},
		{"tier in (web,db),env=prod", []string{"a"}},
		{"nope=1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			got, err := c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: tt.selector}})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("selector %q (-want +got):\n%s", tt.selector, diff)
			}
		})
	}
	for _, bad := range []string{"env=", "=x", "bad key=1", "env in (a", "env=-x"} {
		_, _, err := c.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: bad}})
		if bad == "env=" {
			if err != nil {
				t.Errorf("selector %q (empty value) : %v", bad, err)
			}
			continue
		}
		wantAPIError(t, err, hcloud.ErrorCodeInvalidInput)
	}

	page, resp, err := c.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{Page: 2, PerPage: 2}})
	if err != nil || len(page) != 1 || page[0].Name != "c" {
		t.Fatalf("page 2 of 2: got %v, %v", page, err)
	}
	if p := resp.Meta.Pagination; p == nil || p.LastPage != 2 || p.TotalEntries != 3 || p.PreviousPage != 1 || p.NextPage != 0 {
		t.Errorf("pagination: got %+v", resp.Meta.Pagination)
	}
	running, _, err := c.Server.List(ctx, hcloud.ServerListOpts{Status: []hcloud.ServerStatus{hcloud.ServerStatusOff}})
	if err != nil || len(running) != 0 {
		t.Errorf("status=off: got %v, %v", running, err)
	}
}
