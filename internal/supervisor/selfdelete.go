package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// selfDeleteTimeout bounds the delete self-destruct: finding the server,
// asking for its deletion and waiting for the action.
const selfDeleteTimeout = 2 * time.Minute

// hetznerAPI is the Hetzner Cloud API's default endpoint.
const hetznerAPI = "https://api.hetzner.cloud/v1"

// deleteSelf deletes the VM's own server through the provider's API with
// the token from the bundle. Success means the cloud finished the deletion
// (or the server was gone already); the VM dies with it.
//
// The three calls are made with net/http rather than hcloud-go, which would
// double the supervisor binary every VM downloads.
func deleteSelf(ctx context.Context, sd *protocol.SelfDelete, hc *http.Client) error {
	if sd == nil || sd.Token == "" || sd.Server == "" {
		return errors.New("the bundle holds no token and server for the delete self-destruct")
	}
	if sd.Provider != "hetzner" {
		return fmt.Errorf("delete self-destruct: unknown provider %q", sd.Provider)
	}
	ctx, cancel := context.WithTimeout(ctx, selfDeleteTimeout)
	defer cancel()
	api := &hcloudAPI{base: strings.TrimSuffix(sd.Endpoint, "/"), token: sd.Token, hc: hc}
	if api.base == "" {
		api.base = hetznerAPI
	}
	var list struct {
		Servers []struct {
			ID int64 `json:"id"`
		} `json:"servers"`
	}
	if err := api.do(ctx, http.MethodGet, "/servers?name="+url.QueryEscape(sd.Server), &list); err != nil {
		return fmt.Errorf("find server %q: %w", sd.Server, err)
	}
	if len(list.Servers) == 0 {
		return nil // gone already: the coordinator or the reaper was faster
	}
	var del struct {
		Action hcloudAction `json:"action"`
	}
	err := api.do(ctx, http.MethodDelete, fmt.Sprintf("/servers/%d", list.Servers[0].ID), &del)
	var ae *hcloudError
	if errors.As(err, &ae) && ae.Code == "not_found" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete server %q: %w", sd.Server, err)
	}
	for a := del.Action; ; {
		switch a.Status {
		case "success":
			return nil
		case "error":
			return fmt.Errorf("delete server %q: action failed: %s: %s", sd.Server, a.Error.Code, a.Error.Message)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete server %q: waiting for the action: %w", sd.Server, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		var got struct {
			Action hcloudAction `json:"action"`
		}
		if err := api.do(ctx, http.MethodGet, fmt.Sprintf("/actions/%d", a.ID), &got); err != nil {
			return fmt.Errorf("delete server %q: waiting for the action: %w", sd.Server, err)
		}
		a = got.Action
	}
}

type hcloudAction struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Error  struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// hcloudError is an error answer of the Hetzner Cloud API.
type hcloudError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *hcloudError) Error() string {
	return fmt.Sprintf("Hetzner API: HTTP %d: %s: %s", e.Status, e.Code, e.Message)
}

type hcloudAPI struct {
	base  string
	token protocol.Secret
	hc    *http.Client
}

func (a *hcloudAPI) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token.Reveal())
	req.Header.Set("User-Agent", "sortie-vm-supervisor")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error hcloudError `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		e.Error.Status = resp.StatusCode
		return &e.Error
	}
	return json.Unmarshal(body, out)
}
