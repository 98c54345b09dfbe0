package main

// systemd's service notification protocol (sd_notify), for the packaged
// unit's Type=notify and WatchdogSec=.
//
//   - READY=1 once the member knows a leader (it has joined its cluster) and
//     its client listeners serve: a unit ordered After=metastore.service, or
//     `systemctl start` itself, then finds a member that answers requests.
//   - STOPPING=1 as soon as a graceful stop begins.
//   - WATCHDOG=1 every half WatchdogSec while the member is alive: raft runs
//     and the state machine answers a local read. A wedged member stops
//     pinging and systemd restarts it (Restart=on-failure).
//
// Without NOTIFY_SOCKET (not started by systemd) every message is a no-op,
// and without WATCHDOG_USEC no watchdog goroutine runs.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
)

// systemdNotifier sends a serving member's notifications. Stop sends
// STOPPING=1 and ends its goroutines; it may be called more than once.
type systemdNotifier struct {
	lg     *zap.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// startSystemdNotify starts the READY and watchdog goroutines for a member
// whose client listeners already serve.
func startSystemdNotify(srv *server.Server, lg *zap.Logger) *systemdNotifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &systemdNotifier{lg: lg, cancel: cancel}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.WaitLeader(ctx); err != nil {
			return // stopping before the member ever joined
		}
		n.notify(fmt.Sprintf("READY=1\nSTATUS=serving; member %x, leader %x", srv.Node().ID(), srv.Node().Leader()))
	}()
	if interval, err := daemon.SdWatchdogEnabled(false); err != nil {
		lg.Warn("systemd watchdog settings are invalid; not pinging", zap.Error(err))
	} else if interval > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.watchdog(ctx, srv, interval)
		}()
	}
	return n
}

// watchdog pings at half the watchdog interval, as sd_watchdog_enabled(3)
// advises, for as long as the member is alive.
func (n *systemdNotifier) watchdog(ctx context.Context, srv *server.Server, interval time.Duration) {
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := memberAlive(ctx, srv, interval/2); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.lg.Warn("member not alive; skipping the systemd watchdog ping", zap.Error(err))
			continue
		}
		n.notify("WATCHDOG=1")
	}
}

// memberAlive reports why a member is not alive: raft has stopped, or the
// state machine does not answer a serializable read within timeout (the read
// goes to mvcc and the engine only: a member cut off from its peers is still
// alive; it is the readiness probe's business, not the watchdog's).
func memberAlive(ctx context.Context, srv *server.Server, timeout time.Duration) error {
	select {
	case <-srv.Done():
		return fmt.Errorf("raft stopped: %v", srv.Err())
	default:
	}
	done := make(chan error, 1)
	go func() {
		_, err := srv.Range(context.Background(), &pb.RangeRequest{Key: []byte("health"), Serializable: true, Limit: 1})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("a local read took longer than %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop sends STOPPING=1 (once) and stops the goroutines. Call it before
// srv.Stop: the watchdog reads from the member's store.
func (n *systemdNotifier) Stop() {
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.notify("STOPPING=1")
	})
}

func (n *systemdNotifier) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.lg.Warn("systemd notification failed", zap.String("state", state), zap.Error(err))
	}
}
