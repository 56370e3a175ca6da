package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestExecutionOncePerRequest(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	rec := ExecutionRecord{RequestID: "r1", Cluster: "c", Kind: "collect_logs", Plan: []byte(`{}`), PlanHash: "h"}
	id, created, err := s.CreateExecution(ctx, rec)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	id2, created, err := s.CreateExecution(ctx, rec)
	if err != nil || created || id2 != id {
		t.Fatalf("second create: %q %v %v, want %q false", id2, created, err, id)
	}
	e, err := s.ExecutionForRequest(ctx, "r1")
	if err != nil || e.ID != id || e.State != ExecutionPending || e.PlanHash != "h" {
		t.Fatalf("execution = %+v, %v", e, err)
	}
	// Without a request id every create is a new execution.
	a, _, _ := s.CreateExecution(ctx, ExecutionRecord{Cluster: "c", Kind: "k", Plan: []byte(`{}`)})
	b, _, _ := s.CreateExecution(ctx, ExecutionRecord{Cluster: "c", Kind: "k", Plan: []byte(`{}`)})
	if a == b {
		t.Fatal("two request-less executions share an id")
	}
	if _, err := s.Execution(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing execution: %v", err)
	}
}

func TestStepsRecorded(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	id, _, _ := s.CreateExecution(ctx, ExecutionRecord{Cluster: "c", Kind: "k", Plan: []byte(`{}`)})
	if err := s.StartExecution(ctx, id, "h1"); err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{"a", "b"} {
		if err := s.StartStep(ctx, id, i, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishStep(ctx, id, "a", "done", []byte(`{"output":"x"}`), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.StartStep(ctx, id, 1, "b"); err != nil { // re-executed after a crash
		t.Fatal(err)
	}
	steps, err := s.Steps(ctx, id)
	if err != nil || len(steps) != 2 {
		t.Fatalf("steps = %+v, %v", steps, err)
	}
	if steps[0].State != "done" || string(steps[0].Result) != `{"output":"x"}` || steps[1].State != "running" || steps[1].Attempts != 2 {
		t.Fatalf("steps = %+v", steps)
	}
	ok, err := s.SetExecutionStateIf(ctx, id, "interrupted", "process gone", "running")
	if err != nil || !ok {
		t.Fatalf("interrupt: %v %v", ok, err)
	}
	ok, _ = s.SetExecutionStateIf(ctx, id, "interrupted", "again", "running")
	if ok {
		t.Fatal("interrupted twice")
	}
	if err := s.FinishExecution(ctx, id, "succeeded", []byte(`{"state":"succeeded"}`), ""); err != nil {
		t.Fatal(err)
	}
	e, _ := s.Execution(ctx, id)
	if e.State != "succeeded" || e.FinishedAt.IsZero() || e.StartedAt.IsZero() || e.Holder != "h1" {
		t.Fatalf("execution = %+v", e)
	}
}

func TestLease(t *testing.T) {
	s, clk := open(t)
	ctx := context.Background()
	const ttl = 30 * time.Second
	if _, ok, err := s.AcquireLease(ctx, "c", "A", "e1", ttl); !ok || err != nil {
		t.Fatalf("A acquire: %v %v", ok, err)
	}
	cur, ok, err := s.AcquireLease(ctx, "c", "B", "e2", ttl)
	if ok || err != nil || cur.Holder != "A" || cur.ExecutionID != "e1" {
		t.Fatalf("B acquired a live lease: %+v %v %v", cur, ok, err)
	}
	if _, ok, _ := s.AcquireLease(ctx, "other", "B", "e3", ttl); !ok {
		t.Fatal("a lease of another cluster blocks")
	}
	clk.t = clk.t.Add(20 * time.Second)
	if ok, _ := s.RenewLease(ctx, "c", "A", ttl); !ok {
		t.Fatal("A could not renew")
	}
	clk.t = clk.t.Add(20 * time.Second) // 10 s left after the renewal
	if _, ok, _ := s.AcquireLease(ctx, "c", "B", "e2", ttl); ok {
		t.Fatal("B took a renewed lease")
	}
	clk.t = clk.t.Add(11 * time.Second) // expired
	if _, ok, _ := s.AcquireLease(ctx, "c", "B", "e2", ttl); !ok {
		t.Fatal("B could not take over an expired lease")
	}
	if ok, _ := s.RenewLease(ctx, "c", "A", ttl); ok {
		t.Fatal("A renewed a lease taken over by B")
	}
	if err := s.ReleaseLease(ctx, "c", "A"); err != nil { // not A's: no-op
		t.Fatal(err)
	}
	l, ok, _ := s.LeaseOf(ctx, "c")
	if !ok || l.Holder != "B" {
		t.Fatalf("lease = %+v %v", l, ok)
	}
	s.ReleaseLease(ctx, "c", "B")
	if _, ok, _ := s.LeaseOf(ctx, "c"); ok {
		t.Fatal("released lease still there")
	}
}
