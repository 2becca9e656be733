package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"goapp/internal/notes"
)

// dataState is the verdict of the latest data directory check.
type dataState int32

const (
	dataUnchecked dataState = iota
	// dataWritable: the check wrote, synced and removed its probe file.
	dataWritable
	// dataFull: the volume has no space. The pod stays ready: reads still work, writes answer 507, and on a
	// shared volume every replica is equally full, so withdrawing them all would turn a write outage into a
	// complete one.
	dataFull
	// dataUnwritable: read-only, gone, failing or too slow. The pod is unready until a check succeeds: the
	// cause is often this pod's mount (a node whose NFS mount turned read-only), which other replicas may not
	// share.
	dataUnwritable
)

func (d dataState) String() string {
	switch d {
	case dataWritable:
		return "writable"
	case dataFull:
		return "full"
	case dataUnwritable:
		return "not writable"
	}
	return "unchecked"
}

// stateOf classifies a check's result.
func stateOf(err error) dataState {
	switch {
	case err == nil:
		return dataWritable
	case errors.Is(err, notes.ErrNoSpace):
		return dataFull
	}
	return dataUnwritable
}

// prepare readies the data directory, retrying with a backoff capped at DATA_DIR_RETRY_MAX: a volume that is
// slow to become writable delays readiness rather than crash-looping the pod, and the cap bounds how late its
// recovery is noticed, which is what the startup probe's budget must allow for. Every failure is logged with
// its cause. It reports whether the directory got ready before ctx ended.
func (s *Server) prepare(ctx context.Context) bool {
	wait := min(s.prepareRetry, s.cfg.DataDirRetryMax)
	for {
		removed, err := s.store.Prepare()
		if err == nil {
			if len(removed) > 0 {
				s.logger.Info("removed temporary files abandoned by dead writers", "files", removed)
			}
			s.setData(dataWritable, nil)
			s.started.Store(true)
			s.logger.Info("ready", "data_dir", s.store.Dir())
			return true
		}
		s.logger.Error("data directory check failed; not ready", "data_dir", s.store.Dir(), "error", err.Error(),
			"retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, s.cfg.DataDirRetryMax)
	}
}

// watchDataDir checks the data directory every DATA_CHECK_INTERVAL while serving, so that readiness follows
// the volume: a volume that turns read-only makes the pod unready, and its recovery ready again, each within
// about one interval (plus the readiness probe's period).
func (s *Server) watchDataDir(ctx context.Context) {
	tick := time.NewTicker(s.cfg.DataCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.checkDataDir(ctx)
		}
	}
}

// checkDataDir runs one check. A check that hangs (a dead NFS server) counts as a failure once it has taken
// an interval; the next check starts only after it returns, so checks never pile up.
func (s *Server) checkDataDir(ctx context.Context) {
	result := make(chan error, 1)
	go func() { result <- s.store.CheckWritable() }()
	slow := time.NewTimer(s.cfg.DataCheckInterval)
	defer slow.Stop()
	select {
	case err := <-result:
		s.setData(stateOf(err), err)
		return
	case <-slow.C:
		s.setData(dataUnwritable, fmt.Errorf("the write check took longer than DATA_CHECK_INTERVAL=%s",
			s.cfg.DataCheckInterval))
	case <-ctx.Done():
		return
	}
	select {
	case err := <-result:
		s.setData(stateOf(err), err)
	case <-ctx.Done():
	}
}

// setData records a verdict and logs each change of state once.
func (s *Server) setData(state dataState, cause error) {
	old := dataState(s.data.Swap(int32(state)))
	s.metrics.dataWritable.Set(boolGauge(state == dataWritable))
	if old == state || old == dataUnchecked && state == dataWritable {
		return
	}
	switch state {
	case dataWritable:
		s.logger.Info("data directory is writable again", "data_dir", s.store.Dir(), "was", old.String())
	case dataFull:
		s.logger.Warn("data directory is full: writes answer 507, reads go on", "data_dir", s.store.Dir(),
			"error", cause.Error())
	default:
		s.logger.Error("data directory is not writable: not ready", "data_dir", s.store.Dir(), "error",
			cause.Error())
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
