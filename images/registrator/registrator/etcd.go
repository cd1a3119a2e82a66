package registrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/lhcbdirac/lhcbdirac-pipeline/images/internal/entry"
)

// A transaction holds at most maxTxnOps operations (etcd's --max-txn-ops
// defaults to 128) and maxTxnBytes of keys and values (etcd refuses a
// request over --max-request-bytes, 1.5 MiB by default, as "request is
// too large", writing none of it). An entry over maxTxnBytes alone is
// refused (ReasonTooLarge). Should etcd still find a transaction too
// large (a smaller --max-request-bytes), it is split in halves, down to
// the one entry etcd refuses.
const (
	maxTxnOps   = 100
	maxTxnBytes = 1 << 20
)

// txnBytes is maxTxnBytes (a test raises it to meet etcd's own refusal).
var txnBytes = maxTxnBytes

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
func (s *etcdSink) Apply(ctx context.Context, scope []string, all bool, want []Want) ([]Refusal, error) {
	lease, err := s.ensureLease(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]string{}
	haveLease := map[string]clientv3.LeaseID{}
	prefixes := []string{entry.AppsKey(s.prefix)}
	inScope := map[string]bool{}
	if !all {
		prefixes = prefixes[:0]
		for _, a := range scope {
			prefixes = append(prefixes, entry.AppKey(s.prefix, a))
			inScope[a] = true
		}
	}
	for _, p := range prefixes {
		resp, err := s.cli.Get(ctx, p, clientv3.WithPrefix())
		if err != nil {
			return nil, fmt.Errorf("etcd: reading %s: %w", p, err)
		}
		for _, kv := range resp.Kvs {
			k := string(kv.Key)
			// An app's prefix is also its sub-apps' (/foo/ holds
			// /foo/bar/…): only the keys naming the app itself are its.
			if app, _, ok := entry.SplitKey(s.prefix, k); !all && (!ok || !inScope[app]) {
				continue
			}
			have[k] = string(kv.Value)
			haveLease[k] = clientv3.LeaseID(kv.Lease)
		}
	}
	var refused []Refusal
	var ops []txnOp
	wantKeys := map[string]bool{}
	for _, w := range want {
		if w.Refused != "" {
			continue
		}
		k := entry.Key(s.prefix, w.App, w.Task)
		v := w.Entry.Encode()
		if len(k)+len(v) > txnBytes {
			refused = append(refused, Refusal{Sink: s.Name(), App: w.App, Task: w.Task, Reason: ReasonTooLarge,
				Detail: fmt.Sprintf("its entry is %d bytes (at most %d)", len(k)+len(v), txnBytes)})
			continue // and an older entry of it goes
		}
		wantKeys[k] = true
		if have[k] == v && haveLease[k] == lease {
			continue
		}
		ops = append(ops, txnOp{op: clientv3.OpPut(k, v, clientv3.WithLease(lease)), size: len(k) + len(v), want: &w})
	}
	for k := range have {
		if !wantKeys[k] {
			ops = append(ops, txnOp{op: clientv3.OpDelete(k), size: len(k)})
		}
	}
	// Batches by count and by bytes: one round trip for many tasks.
	for len(ops) > 0 {
		n, size := 0, 0
		for n < len(ops) && n < maxTxnOps && (n == 0 || size+ops[n].size <= txnBytes) {
			size += ops[n].size
			n++
		}
		got, err := s.commit(ctx, ops[:n], have)
		if err != nil {
			return nil, err
		}
		refused = append(refused, got...)
		ops = ops[n:]
	}
	return refused, nil
}

// txnOp is one write of a transaction; want is the task a put writes.
type txnOp struct {
	op   clientv3.Op
	size int
	want *Want
}

// commit writes ops in one transaction; one etcd finds too large is split
// until the entry it refuses is alone, and that entry is refused (its
// older value deleted) while the others are written.
func (s *etcdSink) commit(ctx context.Context, ops []txnOp, have map[string]string) ([]Refusal, error) {
	list := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		list[i] = o.op
	}
	_, err := s.cli.Txn(ctx).Then(list...).Commit()
	if err == nil {
		return nil, nil
	}
	if !tooLarge(err) {
		return nil, fmt.Errorf("etcd: writing %d keys under %s: %w", len(ops), entry.AppsKey(s.prefix), err)
	}
	if len(ops) > 1 {
		a, err := s.commit(ctx, ops[:len(ops)/2], have)
		if err != nil {
			return nil, err
		}
		b, err := s.commit(ctx, ops[len(ops)/2:], have)
		return append(a, b...), err
	}
	w := ops[0].want
	if w == nil {
		return nil, fmt.Errorf("etcd: deleting %s: %w", ops[0].op.KeyBytes(), err)
	}
	refused := []Refusal{{Sink: s.Name(), App: w.App, Task: w.Task, Reason: ReasonRefused, Detail: fmt.Sprintf("etcd refused its %d-byte entry: %v", ops[0].size, err)}}
	k := entry.Key(s.prefix, w.App, w.Task)
	if _, ok := have[k]; ok {
		if _, err := s.cli.Delete(ctx, k); err != nil {
			return nil, fmt.Errorf("etcd: deleting %s: %w", k, err)
		}
	}
	return refused, nil
}

// tooLarge tells etcd's (or gRPC's) refusal of a request's size.
func tooLarge(err error) bool {
	return errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrTooManyOps) || grpcstatus.Code(err) == codes.ResourceExhausted
}
