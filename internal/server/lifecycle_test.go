package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// TestLifecycleThroughClient drives the version routes and the key
// configuration with the Go client, across a restart of the server (whose
// scheduler starts on Open and stops on Close).
func TestLifecycleThroughClient(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.SchedulerInterval = time.Second
	r := start(t, cfg)
	if r.srv.sched == nil {
		t.Fatal("Open did not start the scheduler")
	}
	c := adminClient(t, r, cfg.DataDir)
	created, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "life", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	name := created.Key.Name
	if _, err := c.RotateKey(ctx, name, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableVersion(ctx, name, 2); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("disable the current version: %v", err)
	}
	if _, err := c.EnableVersion(ctx, name, 7); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("enable an absent version: %v", err)
	}
	k, err := c.DisableVersion(ctx, name, 1)
	if err != nil || k.Versions[0].State != api.StateDisabled {
		t.Fatalf("disable: %+v %v", k, err)
	}
	if k, err = c.EnableVersion(ctx, name, 1); err != nil || k.Versions[0].State != api.StateEnabled {
		t.Fatalf("enable: %+v %v", k, err)
	}
	days := uint32(30)
	if k, err = c.ConfigureKey(ctx, name, api.ConfigureKeyRequest{DestroyWaitingDays: &days, AutoRotateDays: &days}); err != nil || k.DestroyWaitingDays != 30 || k.AutoRotateDays != 30 {
		t.Fatalf("configure: %+v %v", k, err)
	}
	k, err = c.DestroyVersion(ctx, name, 1)
	if err != nil || k.Versions[0].State != api.StateDestroyScheduled {
		t.Fatalf("destroy: %+v %v", k, err)
	}
	at, err := time.Parse(time.RFC3339, k.Versions[0].DestroyAt)
	if err != nil || at.Sub(time.Now()) < 29*24*time.Hour || at.Sub(time.Now()) > 31*24*time.Hour {
		t.Fatalf("destroy_at %q is not 30 days from now", k.Versions[0].DestroyAt)
	}

	r.shutdown(t)
	r = start(t, cfg)
	c = adminClient(t, r, cfg.DataDir)
	k, err = c.GetKey(ctx, name)
	if err != nil || k.Versions[0].State != api.StateDestroyScheduled || k.Versions[0].DestroyAt != at.Format(time.RFC3339) || k.CurrentVersion != 2 {
		t.Fatalf("after restart: %+v %v", k, err)
	}
	if k, err = c.CancelDestroy(ctx, name, 1); err != nil || k.Versions[0].State != api.StateDisabled || k.Versions[0].DestroyAt != "" {
		t.Fatalf("cancel-destroy: %+v %v", k, err)
	}
}

func TestSchedulerIntervalChecked(t *testing.T) {
	cfg := testConfig(t)
	cfg.SchedulerInterval = 0
	if err := cfg.Check(); err == nil {
		t.Fatal("a zero scheduler interval was accepted")
	}
}
