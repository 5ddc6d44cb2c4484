package hcloudfake_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/hcloudfake"
)

// A provider test points the real hcloud-go client at the fake. In a test,
// add hcloudfake.WithSpecValidation(t, "") to check the traffic against the
// API spec.
func Example() {
	f := hcloudfake.New(hcloudfake.WithBootHook(func(_ context.Context, s hcloudfake.BootedServer) (func(), error) {
		fmt.Printf("boot %s from %d bytes of user-data\n", s.Name, len(s.UserData))
		return func() { fmt.Println("stop", s.Name) }, nil
	}))
	f.Start()
	defer f.Close()

	ctx := context.Background()
	c := hcloud.NewClient(hcloud.WithEndpoint(f.URL()), hcloud.WithToken("token"),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond)}))
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name:       "run-01",
		ServerType: &hcloud.ServerType{Name: "cx23"},
		Image:      &hcloud.Image{Name: "debian-12"},
		UserData:   "#cloud-config\n",
	})
	if err != nil {
		panic(err)
	}
	if err := c.Action.WaitFor(ctx, res.Action); err != nil {
		panic(err)
	}
	srv, _, _ := c.Server.GetByID(ctx, res.Server.ID)
	fmt.Println(srv.Name, srv.Status, srv.Location.Name)

	del, _, _ := c.Server.DeleteWithResult(ctx, srv)
	if err := c.Action.WaitFor(ctx, del.Action); err != nil {
		panic(err)
	}
	fmt.Println(len(f.Servers()), "servers left")
	// Output:
	// boot run-01 from 14 bytes of user-data
	// run-01 running fsn1
	// stop run-01
	// 0 servers left
}
