package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ZooKeeperOptions configure StartZooKeeper.
type ZooKeeperOptions struct {
	// Whitelist is 4lw.commands.whitelist; default "*" (every word).
	// "srvr" is ZooKeeper 3.5+'s own default.
	Whitelist string
}

// LoneZooKeeper is a ZooKeeper started alone (no ClickHouse, no
// Alertmanager), in its own directory; Close stops it and removes it.
type LoneZooKeeper struct {
	*ZooKeeper
	closeOnce sync.Once
	closeErr  error
}

// StartZooKeeper starts a standalone ZooKeeper 3.8 on a free 127.0.0.1 port
// and waits until it serves. It retries once when the port was taken
// between allocation and use. The caller must Close it.
func StartZooKeeper(ctx context.Context, opts ZooKeeperOptions) (*LoneZooKeeper, error) {
	bins, err := findBinaries()
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	z, err := startZooKeeper(ctx, opts, bins)
	if errors.Is(err, errAddrInUse) {
		z, err = startZooKeeper(ctx, opts, bins)
	}
	return z, err
}

func startZooKeeper(ctx context.Context, opts ZooKeeperOptions, bins *binaries) (_ *LoneZooKeeper, err error) {
	removeStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: %w", err)
	}
	zk, err := newZooKeeper(filepath.Join(dir, "zookeeper"), ports[0], bins.java, bins.zkClasspath, opts.Whitelist)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: zookeeper config: %w", err)
	}
	z := &LoneZooKeeper{ZooKeeper: zk}
	defer func() {
		if err != nil {
			err = errors.Join(err, z.Close())
		}
	}()
	if err := zk.Start(ctx); err != nil {
		return z, fmt.Errorf("testenv: start zookeeper (dir %s): %w", dir, err)
	}
	return z, nil
}

// Close stops the server and removes its directory (kept with
// CHMEDIC_KEEP_TESTENV=1). It is idempotent.
func (z *LoneZooKeeper) Close() error {
	z.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*stopGrace)
		defer cancel()
		var errs []error
		if z.proc != nil {
			errs = append(errs, z.proc.stop(ctx, 0))
		}
		dir := filepath.Dir(z.Dir)
		if os.Getenv(EnvKeep) == "1" {
			_ = os.Remove(filepath.Join(dir, ownerFile))
			fmt.Fprintf(os.Stderr, "testenv: %s=1: kept the zookeeper in %s\n", EnvKeep, dir)
		} else if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("testenv: remove %s: %w", dir, err))
		}
		z.closeErr = errors.Join(errs...)
	})
	return z.closeErr
}

// ZooKeeperFor starts a ZooKeeper for tb (after Require) and closes it
// when tb ends.
func ZooKeeperFor(tb testing.TB, opts ZooKeeperOptions) *LoneZooKeeper {
	tb.Helper()
	Require(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	z, err := StartZooKeeper(ctx, opts)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if err := z.Close(); err != nil {
			tb.Errorf("close zookeeper: %v", err)
		}
	})
	return z
}
