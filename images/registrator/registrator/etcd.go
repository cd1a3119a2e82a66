package registrator

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/registrator/entry"
)

// maxTxnOps bounds a transaction (etcd's --max-txn-ops defaults to 128).
const maxTxnOps = 100

// etcdSink keeps one key per running task under the prefix, every key
// bound to the registrator's lease: when the registrator dies, its keys
// expire after the lease's TTL instead of lingering as live tasks.
type etcdSink struct {
	cli    *clientv3.Client
	prefix string
	ttl    time.Duration

	mu    sync.Mutex
	lease clientv3.LeaseID // 0: none yet, or lost
	lost  chan struct{}    // closed when the lease's keep-alive ends
}

func newEtcdSink(endpoints []string, prefix string, ttl time.Duration) (*etcdSink, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      quietZap(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(endpoints, ","), err)
	}
	return &etcdSink{cli: cli, prefix: prefix, ttl: ttl}, nil
}

func (s *etcdSink) Name() string { return "etcd" }

func (s *etcdSink) Close() error {
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	if lease != 0 {
		// Revoking takes the keys with it at once: a clean stop leaves
		// nothing behind.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.cli.Revoke(ctx, lease)
		cancel()
	}
	return s.cli.Close()
}

// Lost is closed when the lease is gone (etcd unreachable past its TTL):
// every key went with it, so the registrator must write everything again.
func (s *etcdSink) Lost() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost == nil {
		s.lost = make(chan struct{})
	}
	return s.lost
}

// ensureLease grants a lease when there is none and keeps it alive.
func (s *etcdSink) ensureLease(ctx context.Context) (clientv3.LeaseID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease != 0 {
		return s.lease, nil
	}
	g, err := s.cli.Grant(ctx, int64(s.ttl/time.Second))
	if err != nil {
		return 0, fmt.Errorf("etcd: granting a lease: %w", err)
	}
	// The keep-alive outlives this call: a context of its own.
	kctx, cancel := context.WithCancel(context.Background())
	ch, err := s.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		cancel()
		return 0, fmt.Errorf("etcd: keeping lease %x alive: %w", g.ID, err)
	}
	s.lease = g.ID
	if s.lost == nil {
		s.lost = make(chan struct{})
	}
	lost := s.lost
	go func() {
		for range ch {
		}
		cancel()
		s.mu.Lock()
		if s.lease == g.ID {
			s.lease = 0
			close(lost)
			s.lost = make(chan struct{})
		}
		s.mu.Unlock()
	}()
	return g.ID, nil
}

// Apply makes the keys of the apps in scope (every app when all) exactly
// want: stale keys deleted, missing or different ones written.
func (s *etcdSink) Apply(ctx context.Context, scope []string, all bool, want []Want) error {
	lease, err := s.ensureLease(ctx)
	if err != nil {
		return err
	}
	have := map[string]string{}
	haveLease := map[string]clientv3.LeaseID{}
	prefixes := []string{entry.AppsKey(s.prefix)}
	if !all {
		prefixes = prefixes[:0]
		for _, a := range scope {
			prefixes = append(prefixes, entry.AppKey(s.prefix, a))
		}
	}
	for _, p := range prefixes {
		resp, err := s.cli.Get(ctx, p, clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("etcd: reading %s: %w", p, err)
		}
		for _, kv := range resp.Kvs {
			have[string(kv.Key)] = string(kv.Value)
			haveLease[string(kv.Key)] = clientv3.LeaseID(kv.Lease)
		}
	}
	// The writes go in transactions of up to maxTxnOps (etcd's default
	// --max-txn-ops is 128): one round trip for many tasks.
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("etcd: writing %d keys under %s: %w", len(ops), entry.AppsKey(s.prefix), err)
		}
		ops = ops[:0]
		return nil
	}
	add := func(op clientv3.Op) error {
		ops = append(ops, op)
		if len(ops) == maxTxnOps {
			return flush()
		}
		return nil
	}
	wantKeys := map[string]bool{}
	for _, w := range want {
		k := entry.Key(s.prefix, w.App, w.Task)
		wantKeys[k] = true
		v := w.Entry.Encode()
		if have[k] == v && haveLease[k] == lease {
			continue
		}
		if err := add(clientv3.OpPut(k, v, clientv3.WithLease(lease))); err != nil {
			return err
		}
	}
	for k := range have {
		if wantKeys[k] {
			continue
		}
		if err := add(clientv3.OpDelete(k)); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return nil
}
