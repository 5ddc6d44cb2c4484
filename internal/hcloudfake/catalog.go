package hcloudfake

import (
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// The catalog: what a Hetzner Cloud project sees of locations, server types,
// images and prices. The numbers are close to the public price list of late
// 2025 (EUR, net, 19 % VAT) but only their shape matters to tests.

const (
	vatRate = "19.00"
	tb      = 1 << 40
)

var locations = []schema.Location{
	{ID: 1, Name: "fsn1", Description: "Falkenstein DC Park 1", Country: "DE", City: "Falkenstein", Latitude: 50.47612, Longitude: 12.370071, NetworkZone: "eu-central"},
	{ID: 2, Name: "nbg1", Description: "Nuremberg DC Park 1", Country: "DE", City: "Nuremberg", Latitude: 49.452102, Longitude: 11.076665, NetworkZone: "eu-central"},
	{ID: 3, Name: "hel1", Description: "Helsinki DC Park 1", Country: "FI", City: "Helsinki", Latitude: 60.169855, Longitude: 24.938379, NetworkZone: "eu-central"},
	{ID: 4, Name: "ash", Description: "Ashburn, VA", Country: "US", City: "Ashburn, VA", Latitude: 39.045821, Longitude: -77.487073, NetworkZone: "us-east"},
	{ID: 5, Name: "hil", Description: "Hillsboro, OR", Country: "US", City: "Hillsboro, OR", Latitude: 45.54222, Longitude: -122.95161, NetworkZone: "us-west"},
	{ID: 6, Name: "sin", Description: "Singapore", Country: "SG", City: "Singapore", Latitude: 1.283333, Longitude: 103.833333, NetworkZone: "ap-southeast"},
}

var (
	euLocations  = []string{"fsn1", "nbg1", "hel1"}
	allLocations = []string{"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}
)

// serverTypeSpec is one server type of the catalog with its monthly and
// hourly net prices.
type serverTypeSpec struct {
	id                      int64
	name, category, cpuType string
	arch                    string
	cores                   int
	memory                  float32
	disk                    int
	monthly, hourly         string
	locations               []string
}

var serverTypes = []serverTypeSpec{
	{id: 114, name: "cx23", category: "Cost-Optimized", cpuType: "shared", arch: "x86", cores: 2, memory: 4, disk: 40, monthly: "2.99", hourly: "0.0048", locations: euLocations},
	{id: 115, name: "cx33", category: "Cost-Optimized", cpuType: "shared", arch: "x86", cores: 4, memory: 8, disk: 80, monthly: "4.99", hourly: "0.008", locations: euLocations},
	{id: 108, name: "cpx22", category: "Regular Purpose", cpuType: "shared", arch: "x86", cores: 2, memory: 4, disk: 80, monthly: "5.99", hourly: "0.0096", locations: allLocations},
	{id: 109, name: "cpx32", category: "Regular Purpose", cpuType: "shared", arch: "x86", cores: 4, memory: 8, disk: 160, monthly: "10.49", hourly: "0.0168", locations: allLocations},
	{id: 45, name: "cax11", category: "Cost-Optimized", cpuType: "shared", arch: "arm", cores: 2, memory: 4, disk: 40, monthly: "3.79", hourly: "0.0061", locations: euLocations},
	{id: 93, name: "cax21", category: "Cost-Optimized", cpuType: "shared", arch: "arm", cores: 4, memory: 8, disk: 80, monthly: "6.49", hourly: "0.0104", locations: euLocations},
	{id: 96, name: "ccx13", category: "General Purpose", cpuType: "dedicated", arch: "x86", cores: 2, memory: 8, disk: 80, monthly: "12.49", hourly: "0.02", locations: allLocations},
}

// price returns a net price and its gross with VAT, formatted like the API.
func price(net string, decimals int) schema.Price {
	n, ok := new(big.Rat).SetString(net)
	if !ok {
		panic("hcloudfake: bad price " + net)
	}
	g := new(big.Rat).Mul(n, big.NewRat(119, 100))
	return schema.Price{Net: n.FloatString(decimals), Gross: g.FloatString(decimals)}
}

func locationByName(name string) *schema.Location {
	for i := range locations {
		if locations[i].Name == name || itoa(locations[i].ID) == name {
			return &locations[i]
		}
	}
	return nil
}

// trafficFor is the included traffic and the price of more in a location.
func trafficFor(loc string) (uint64, string) {
	switch loc {
	case "ash", "hil":
		return 1 * tb, "1.00"
	case "sin":
		return tb / 2, "7.40"
	default:
		return 20 * tb, "1.00"
	}
}

func (st serverTypeSpec) prices() []schema.PricingServerTypePrice {
	out := make([]schema.PricingServerTypePrice, 0, len(st.locations))
	for _, loc := range st.locations {
		incl, perTB := trafficFor(loc)
		out = append(out, schema.PricingServerTypePrice{
			Location:          loc,
			PriceHourly:       price(st.hourly, 10),
			PriceMonthly:      price(st.monthly, 10),
			IncludedTraffic:   incl,
			PricePerTBTraffic: price(perTB, 10),
		})
	}
	return out
}

func (st serverTypeSpec) schema() schema.ServerType {
	locs := make([]schema.ServerTypeLocation, 0, len(st.locations))
	for _, name := range st.locations {
		l := locationByName(name)
		locs = append(locs, schema.ServerTypeLocation{ID: l.ID, Name: l.Name, Available: true, Recommended: name == "fsn1"})
	}
	return schema.ServerType{
		ID: st.id, Name: st.name, Description: strings.ToUpper(st.name), Category: st.category,
		Cores: st.cores, Memory: st.memory, Disk: st.disk,
		StorageType: "local", CPUType: st.cpuType, Architecture: st.arch,
		Prices: st.prices(), Locations: locs,
	}
}

func (st serverTypeSpec) offeredIn(loc string) bool { return contains(st.locations, loc) }

func serverTypeByName(nameOrID string) *serverTypeSpec {
	for i := range serverTypes {
		if serverTypes[i].name == nameOrID || itoa(serverTypes[i].id) == nameOrID {
			return &serverTypes[i]
		}
	}
	return nil
}

// imageSpec is one public image, offered for both architectures.
type imageSpec struct {
	id                         int64
	name, typ, flavor, version string
	description                string
	arch                       string
}

var images = []imageSpec{
	{id: 161547269, name: "debian-12", typ: "system", flavor: "debian", version: "12", description: "Debian 12", arch: "x86"},
	{id: 161547270, name: "debian-12", typ: "system", flavor: "debian", version: "12", description: "Debian 12", arch: "arm"},
	{id: 161547271, name: "ubuntu-24.04", typ: "system", flavor: "ubuntu", version: "24.04", description: "Ubuntu 24.04", arch: "x86"},
	{id: 161547272, name: "ubuntu-24.04", typ: "system", flavor: "ubuntu", version: "24.04", description: "Ubuntu 24.04", arch: "arm"},
	{id: 161547273, name: "docker-ce", typ: "app", flavor: "ubuntu", version: "24.04", description: "Docker CE", arch: "x86"},
	{id: 161547274, name: "docker-ce", typ: "app", flavor: "ubuntu", version: "24.04", description: "Docker CE", arch: "arm"},
}

var imagesCreated = time.Date(2025, 5, 20, 10, 0, 0, 0, time.UTC)

func (im imageSpec) schema() schema.Image {
	name, version, created := im.name, im.version, imagesCreated
	return schema.Image{
		ID: im.id, Status: "available", Type: im.typ, Name: &name, Description: im.description,
		DiskSize: 5, Created: &created, OSFlavor: im.flavor, OSVersion: &version,
		Architecture: im.arch, RapidDeploy: im.typ == "system", Labels: map[string]string{},
	}
}

// imageFor resolves an image by ID, or by name for the given architecture.
func imageFor(ref schema.IDOrName, arch string) *imageSpec {
	for i := range images {
		im := &images[i]
		if ref.ID != 0 && im.id == ref.ID {
			return im
		}
		if ref.ID == 0 && im.name == ref.Name && im.arch == arch {
			return im
		}
	}
	return nil
}

func imageExists(ref schema.IDOrName) bool {
	for _, im := range images {
		if im.id == ref.ID || (ref.ID == 0 && im.name == ref.Name) {
			return true
		}
	}
	return false
}

// pricing is the answer of GET /pricing.
func pricing() schema.Pricing {
	p := schema.Pricing{
		Currency:     "EUR",
		VATRate:      vatRate,
		Image:        schema.PricingImage{PricePerGBMonth: price("0.011", 4)},
		Volume:       schema.PricingVolume{PricePerGBPerMonth: price("0.044", 4)},
		FloatingIP:   schema.PricingFloatingIP{PriceMonthly: price("3.00", 4)},
		Traffic:      schema.PricingTraffic{PricePerTB: price("0", 4)},
		ServerBackup: schema.PricingServerBackup{Percentage: "20.00"},
	}
	for _, st := range serverTypes {
		p.ServerTypes = append(p.ServerTypes, schema.PricingServerType{ID: st.id, Name: st.name, Prices: st.prices()})
	}
	lb := schema.PricingLoadBalancerType{ID: 1, Name: "lb11"}
	for _, loc := range allLocations {
		incl, perTB := trafficFor(loc)
		lb.Prices = append(lb.Prices, schema.PricingLoadBalancerTypePrice{
			Location: loc, PriceHourly: price("0.0088", 10), PriceMonthly: price("5.39", 10),
			IncludedTraffic: incl, PricePerTBTraffic: price(perTB, 10),
		})
	}
	p.LoadBalancerTypes = []schema.PricingLoadBalancerType{lb}
	p.PrimaryIPs = []schema.PricingPrimaryIP{
		{Type: "ipv4", Prices: primaryIPPrices("0.0008", "0.50")},
		{Type: "ipv6", Prices: primaryIPPrices("0", "0")},
	}
	p.FloatingIPs = []schema.PricingFloatingIPType{
		{Type: "ipv4", Prices: floatingIPPrices("3.00")},
		{Type: "ipv6", Prices: floatingIPPrices("3.00")},
	}
	return p
}

func primaryIPPrices(hourly, monthly string) []schema.PricingPrimaryIPTypePrice {
	out := make([]schema.PricingPrimaryIPTypePrice, 0, len(allLocations))
	for _, loc := range allLocations {
		out = append(out, schema.PricingPrimaryIPTypePrice{
			Location: loc, PriceHourly: price(hourly, 10), PriceMonthly: price(monthly, 10),
		})
	}
	return out
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

func floatingIPPrices(monthly string) []schema.PricingFloatingIPTypePrice {
	out := make([]schema.PricingFloatingIPTypePrice, 0, len(allLocations))
	for _, loc := range allLocations {
		out = append(out, schema.PricingFloatingIPTypePrice{Location: loc, PriceMonthly: price(monthly, 4)})
	}
	return out
}
