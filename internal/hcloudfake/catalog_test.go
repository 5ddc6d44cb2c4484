package hcloudfake_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

func TestPricing(t *testing.T) {
	_, c := start(t)
	p, _, err := c.Pricing.Get(ctxT(t))
	if err != nil {
		t.Fatalf("pricing: %v", err)
	}
	if p.Image.PerGBMonth.Currency != "EUR" || p.Image.PerGBMonth.VATRate != "19.00" {
		t.Errorf("currency/VAT: got %q %q", p.Image.PerGBMonth.Currency, p.Image.PerGBMonth.VATRate)
	}
	var cx23 *hcloud.ServerTypePricing
	for i := range p.ServerTypes {
		if p.ServerTypes[i].ServerType.Name == "cx23" {
			cx23 = &p.ServerTypes[i]
		}
	}
	if cx23 == nil {
		t.Fatal("no price for cx23")
	}
	var locs []string
	for _, lp := range cx23.Pricings {
		locs = append(locs, lp.Location.Name)
		if lp.Hourly.Net == "" || lp.Monthly.Gross == "" || lp.IncludedTraffic == 0 {
			t.Errorf("cx23 in %s: incomplete price %+v", lp.Location.Name, lp)
		}
	}
	if diff := cmp.Diff([]string{"fsn1", "nbg1", "hel1"}, locs); diff != "" {
		t.Errorf("cx23 priced in (-want +got):\n%s", diff)
	}
	if got, want := cx23.Pricings[0].Monthly, (hcloud.Price{Currency: "EUR", VATRate: "19.00", Net: "2.9900000000", Gross: "3.5581000000"}); got != want {
		t.Errorf("cx23 monthly in fsn1: got %+v, want %+v", got, want)
	}
}

func TestServerTypesAndLocations(t *testing.T) {
	_, c := start(t)
	ctx := ctxT(t)
	st, _, err := c.ServerType.GetByName(ctx, "cax11")
	if err != nil || st == nil {
		t.Fatalf("server type by name: %v, %v", st, err)
	}
	if st.Architecture != hcloud.ArchitectureARM || st.Cores != 2 || len(st.Locations) != 3 {
		t.Errorf("cax11: got %+v", st)
	}
	byID, _, err := c.ServerType.GetByID(ctx, st.ID)
	if err != nil || byID == nil || byID.Name != "cax11" {
		t.Errorf("server type by ID: %v, %v", byID, err)
	}
	all, err := c.ServerType.All(ctx)
	if err != nil || len(all) < 5 {
		t.Errorf("all server types: %d, %v", len(all), err)
	}
	loc, _, err := c.Location.GetByName(ctx, "hel1")
	if err != nil || loc == nil || loc.NetworkZone != hcloud.NetworkZoneEUCentral {
		t.Fatalf("location: %+v, %v", loc, err)
	}
	if l, _, err := c.Location.GetByID(ctx, loc.ID); err != nil || l.Name != "hel1" {
		t.Errorf("location by ID: %v, %v", l, err)
	}
	if missing, _, err := c.ServerType.GetByName(ctx, "cx11"); err != nil || missing != nil {
		t.Errorf("unknown server type: got %v, %v; want nil, nil", missing, err)
	}
}

func TestImages(t *testing.T) {
	_, c := start(t)
	ctx := ctxT(t)
	tests := []struct {
		name string
		arch hcloud.Architecture
		typ  hcloud.ImageType
	}{
		{"docker-ce", hcloud.ArchitectureX86, hcloud.ImageTypeApp},
		{"docker-ce", hcloud.ArchitectureARM, hcloud.ImageTypeApp},
		{"debian-12", hcloud.ArchitectureX86, hcloud.ImageTypeSystem},
		{"ubuntu-24.04", hcloud.ArchitectureARM, hcloud.ImageTypeSystem},
	}
	for _, tt := range tests {
		im, _, err := c.Image.GetByNameAndArchitecture(ctx, tt.name, tt.arch)
		if err != nil || im == nil {
			t.Fatalf("%s/%s: %v, %v", tt.name, tt.arch, im, err)
		}
		if im.Type != tt.typ || im.Architecture != tt.arch {
			t.Errorf("%s/%s: got type %q arch %q", tt.name, tt.arch, im.Type, im.Architecture)
		}
		if byID, _, err := c.Image.GetByID(ctx, im.ID); err != nil || byID.Name != tt.name {
			t.Errorf("image by ID: %v, %v", byID, err)
		}
	}
	apps, err := c.Image.AllWithOpts(ctx, hcloud.ImageListOpts{Type: []hcloud.ImageType{hcloud.ImageTypeApp}})
	if err != nil || len(apps) != 2 {
		t.Errorf("app images: got %d, %v; want 2", len(apps), err)
	}
	x86, err := c.Image.AllWithOpts(ctx, hcloud.ImageListOpts{Architecture: []hcloud.Architecture{hcloud.ArchitectureX86}, Type: []hcloud.ImageType{hcloud.ImageTypeSystem}})
	if err != nil || len(x86) != 2 {
		t.Errorf("x86 system images: got %d, %v; want 2", len(x86), err)
	}
}

const (
	keyA = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP4fkrha9vZSzrkmMFevwVsVIjmsM75Xg333O5X3ZkHL a@example"
	keyB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFCvXTHyts+4HIY3Zbz6V1oYhu448Sqa8xMv9zKCFzUo b@example"
)

func TestSSHKeys(t *testing.T) {
	_, c := start(t)
	ctx := ctxT(t)
	key, _, err := c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "run-1", PublicKey: keyA, Labels: map[string]string{"run": "1"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(key.Fingerprint) != 47 {
		t.Errorf("fingerprint: got %q, want MD5 hex pairs", key.Fingerprint)
	}
	_, _, err = c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "run-1", PublicKey: keyB})
	wantAPIError(t, err, hcloud.ErrorCodeUniquenessError)
	_, _, err = c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "other", PublicKey: keyA})
	wantAPIError(t, err, hcloud.ErrorCodeUniquenessError)
	_, _, err = c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "bad", PublicKey: "ssh-ed25519 not-base64"})
	wantAPIError(t, err, hcloud.ErrorCodeInvalidInput)
	if _, _, err := c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "run-2", PublicKey: keyB}); err != nil {
		t.Fatalf("second key: %v", err)
	}

	byLabel, err := c.SSHKey.AllWithOpts(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "run=1"}})
	if err != nil || len(byLabel) != 1 || byLabel[0].ID != key.ID {
		t.Errorf("by label: %v, %v", byLabel, err)
	}
	byName, _, err := c.SSHKey.GetByName(ctx, "run-2")
	if err != nil || byName == nil {
		t.Fatalf("by name: %v, %v", byName, err)
	}
	if byFP, _, err := c.SSHKey.GetByFingerprint(ctx, key.Fingerprint); err != nil || byFP.ID != key.ID {
		t.Errorf("by fingerprint: %v, %v", byFP, err)
	}

	opts := createOpts("with-key")
	opts.SSHKeys = []*hcloud.SSHKey{key}
	res, _, err := c.Server.Create(ctx, opts)
	if err != nil || res.RootPassword != "" {
		t.Errorf("create with a key: %v, root password %q (want none)", err, res.RootPassword)
	}

	if _, err := c.SSHKey.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if gone, _, err := c.SSHKey.GetByID(ctx, key.ID); err != nil || gone != nil {
		t.Errorf("after delete: %v, %v", gone, err)
	}
}
