package natsstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/difftest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const app = 1400000001

var t0 = time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)

func testConfig(urls ...string) Config {
	c := Config{URL: urls, Create: true}
	c.SetDefaults()
	return c
}

// open opens c and closes the bucket in t's cleanup.
func open(t testing.TB, c Config) *Bucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, c, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func state(id string, n int) *diff.State {
	s := &diff.State{Version: diff.StateVersion, SDKAppID: app, GroupID: id, ObservedAt: t0}
	for i := range n {
		s.Members = append(s.Members, diff.Tracked{
			Member:   schema.Member{Account: fmt.Sprintf("user-%06d", i), NickName: fmt.Sprintf("nick %d", i), JoinTime: 1700000000 + int64(i)},
			LastSeen: diff.InstantOf(t0),
		})
	}
	return s
}

func TestDetectorWithNATSStore(t *testing.T) {
	srv := natstest.Start(t, nil)
	n := 0
	difftest.RunDetectorSuite(t, func(t *testing.T) (diff.Store, func() diff.Store) {
		// A bucket per case: the suite's cases use the same group.
		n++
		c := testConfig(srv.URL())
		c.Bucket = fmt.Sprintf("suite%d", n)
		b := open(t, c)
		return b.App(app), func() diff.Store {
			b.Close()
			b = open(t, c)
			return b.App(app)
		}
	})
}

func TestRoundTripAndList(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t, nil)
	b := open(t, testConfig(srv.URL()))
	s, other := b.App(app), b.App(app+1)
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List of an empty bucket = %q, %v", list, err)
	}
	if apps, err := b.Apps(ctx); err != nil || len(apps) != 0 {
		t.Fatalf("Apps of an empty bucket = %v, %v", apps, err)
	}
	ids := []string{"@TGS#2abc", "a.b", "*", "群组 1"}
	for _, id := range ids {
		rev, err := s.Save(ctx, state(id, 3), 0)
		if err != nil {
			t.Fatal(err)
		}
		got, grev, err := s.Load(ctx, id)
		if err != nil || grev != rev || !reflect.DeepEqual(got, state(id, 3)) {
			t.Fatalf("Load(%q) = %+v, %d, %v; want the saved state at %d", id, got, grev, err, rev)
		}
	}
	if _, err := other.Save(ctx, state("other", 1), 0); err != nil {
		t.Fatal(err)
	}
	// The same id in another app is another group.
	if got, rev, err := other.Load(ctx, "a.b"); got != nil || rev != 0 || err != nil {
		t.Fatalf("other app sees %v, %d, %v", got, rev, err)
	}
	list, err := s.List(ctx)
	if want := []string{"*", "@TGS#2abc", "a.b", "群组 1"}; err != nil || !reflect.DeepEqual(list, want) {
		t.Fatalf("List = %q, %v; want %q", list, err, want)
	}
	apps, err := b.Apps(ctx)
	if err != nil || !reflect.DeepEqual(apps, []uint64{app, app + 1}) {
		t.Fatalf("Apps = %v, %v", apps, err)
	}
	if err := s.Forget(ctx, "a.b"); err != nil {
		t.Fatal(err)
	}
	if got, rev, err := s.Load(ctx, "a.b"); got != nil || rev != 0 || err != nil {
		t.Fatalf("after Forget: %v, %d, %v", got, rev, err)
	}
	if err := s.Forget(ctx, "never"); err != nil {
		t.Fatalf("Forget of an absent group: %v", err)
	}
	if err := s.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxAndStateShareOneRevision(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t, nil)
	s := open(t, testConfig(srv.URL())).App(app)
	const id = "g"
	r1, err := s.Save(ctx, state(id, 2), 0)
	if err != nil {
		t.Fatal(err)
	}
	next := state(id, 3)
	p := &diff.Pending{Events: []schema.Event{{ID: "e1"}}, Next: next}
	r2, err := s.SaveOutbox(ctx, id, p, r1)
	if err != nil || r2 <= r1 {
		t.Fatalf("SaveOutbox = %d, %v", r2, err)
	}
	// A fresh Store (another process) reads state and outbox together.
	fresh := open(t, testConfig(srv.URL())).App(app)
	got, rev, err := fresh.Load(ctx, id)
	if err != nil || rev != r2 {
		t.Fatalf("Load = %d, %v", rev, err)
	}
	if got.Pending == nil || got.Pending.Events[0].ID != "e1" || len(got.Members) != 2 {
		t.Fatalf("Load = %+v", got)
	}
	// An outbox written by a Store that did not read the revision itself.
	r3, err := fresh.SaveOutbox(ctx, id, p, r2)
	if err != nil {
		t.Fatal(err)
	}
	r4, err := fresh.Save(ctx, next, r3)
	if err != nil {
		t.Fatal(err)
	}
	got, rev, err = s.Load(ctx, id)
	if err != nil || rev != r4 || got.Pending != nil || len(got.Members) != 3 {
		t.Fatalf("after Save: %+v, %d, %v", got, rev, err)
	}
}

func TestConflictBetweenTwoStores(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t, nil)
	a := open(t, testConfig(srv.URL())).App(app)
	b := open(t, testConfig(srv.URL())).App(app)
	const id = "shared"
	// Both create: one wins.
	ra, err := a.Save(ctx, state(id, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	var ce *diff.ConflictError
	if _, err := b.Save(ctx, state(id, 2), 0); !errors.As(err, &ce) || ce.Current != ra {
		t.Fatalf("second create: %v, want a conflict at %d", err, ra)
	}
	_, rb, err := b.Load(ctx, id)
	if err != nil || rb != ra {
		t.Fatal(rb, err)
	}
	rb2, err := b.Save(ctx, state(id, 2), rb)
	if err != nil {
		t.Fatal(err)
	}
	// a's revision is stale now: both writes are refused.
	if _, err := a.Save(ctx, state(id, 3), ra); !errors.As(err, &ce) || ce.Base != ra || ce.Current != rb2 {
		t.Fatalf("stale Save: %v", err)
	}
	p := &diff.Pending{Events: []schema.Event{{ID: "x"}}, Next: state(id, 3)}
	if _, err := a.SaveOutbox(ctx, id, p, ra); !errors.As(err, &ce) {
		t.Fatalf("stale SaveOutbox: %v", err)
	}
	got, rev, err := a.Load(ctx, id)
	if err != nil || rev != rb2 || len(got.Members) != 2 || got.Pending != nil {
		t.Fatalf("the loser changed the record: %+v, %d, %v", got, rev, err)
	}
	// Forget makes a holder's next write conflict.
	if err := a.Forget(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(ctx, state(id, 4), rb2); !errors.As(err, &ce) {
		t.Fatalf("write after Forget: %v", err)
	}
	if err := a.Healthy(ctx); err != nil {
		t.Fatalf("conflicts made the store unhealthy: %v", err)
	}
}

func TestBigGroupIsChunked(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t, func(o *server.Options) { o.MaxPayload = 32 * 1024 })
	b := open(t, testConfig(srv.URL()))
	s := b.App(app)
	const id = "@TGS#big"
	big := state(id, 20000)
	rev, err := s.Save(ctx, big, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := b.kv.Get(ctx, Key(app, id))
	if err != nil || e.Value()[0] != formatChunked {
		t.Fatalf("entry not chunked: %v", err)
	}
	got, grev, err := s.Load(ctx, id)
	if err != nil || grev != rev || !reflect.DeepEqual(got, big) {
		t.Fatalf("Load: %d members, rev %d, %v", len(got.Members), grev, err)
	}
	// Outbox beside it, then commit: the chunks of replaced revisions go.
	next := state(id, 19999)
	rev, err = s.SaveOutbox(ctx, id, &diff.Pending{Events: []schema.Event{{ID: "e"}}, Next: next}, rev)
	if err != nil {
		t.Fatal(err)
	}
	fresh := open(t, testConfig(srv.URL())).App(app)
	got, _, err = fresh.Load(ctx, id)
	if err != nil || !reflect.DeepEqual(got.Pending.Next, next) || len(got.Members) != 20000 {
		t.Fatalf("Load with outbox: %v", err)
	}
	if rev, err = s.Save(ctx, next, rev); err != nil {
		t.Fatal(err)
	}
	if got, _, err = fresh.Load(ctx, id); err != nil || !reflect.DeepEqual(got, next) {
		t.Fatalf("Load after commit: %v", err)
	}
	// Only the current revision's chunks are left.
	keys, err := b.keys(ctx, Key(app, id)+".c.>")
	if err != nil {
		t.Fatal(err)
	}
	wids := map[string]bool{}
	for _, k := range keys {
		wids[strings.Split(k, ".")[3]] = true
	}
	if len(wids) != 1 || !wids[b.manifestID(ctx, Key(app, id))] {
		t.Fatalf("chunks of %d writes left: %q", len(wids), keys)
	}
	if n, err := b.CollectChunks(ctx, 0); err != nil || n != 0 {
		t.Fatalf("CollectChunks = %d, %v; want nothing to collect", n, err)
	}
	// A write that lost the CAS leaves no chunks either.
	if _, err := fresh.Save(ctx, big, rev-1); err == nil {
		t.Fatal("stale write accepted")
	}
	if keys2, _ := b.keys(ctx, Key(app, id)+".c.>"); len(keys2) != len(keys) {
		t.Fatalf("a lost write left chunks: %d, want %d", len(keys2), len(keys))
	}
	// Orphans (as a crash leaves) are collected once old enough.
	if _, err := b.kv.Put(ctx, chunkKey(Key(app, id), "deadbeef", 0), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := b.CollectChunks(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("CollectChunks collected a young chunk: %d, %v", n, err)
	}
	if n, err := b.CollectChunks(ctx, 0); err != nil || n != 1 {
		t.Fatalf("CollectChunks = %d, %v; want 1", n, err)
	}
	// And by the daemon's periodic collection, until its context ends.
	orphan := chunkKey(Key(app, id), "feedface", 0)
	if _, err := b.kv.Put(ctx, orphan, []byte("x")); err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.CollectChunksEvery(cctx, 50*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.kv.Get(ctx, orphan); errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("CollectChunksEvery did not collect an orphan chunk")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	// Forget takes the chunks with the entry.
	if err := s.Forget(ctx, id); err != nil {
		t.Fatal(err)
	}
	if keys, err := b.keys(ctx, Key(app, id)+".c.>"); err != nil || len(keys) != 0 {
		t.Fatalf("after Forget: %q, %v", keys, err)
	}
}

func TestUndecodableValueNamesItsKey(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t, nil)
	b := open(t, testConfig(srv.URL()))
	s := b.App(app)
	if _, err := s.Save(ctx, state("good", 2), 0); err != nil {
		t.Fatal(err)
	}
	for i, v := range [][]byte{[]byte("{garbage"), {formatInline, 5, 1, 2}, {formatChunked, '{'}, {}} {
		id := fmt.Sprintf("bad%d", i)
		if _, err := b.kv.Put(ctx, Key(app, id), v); err != nil {
			t.Fatal(err)
		}
		st, _, err := s.Load(ctx, id)
		if err == nil || st != nil || !strings.Contains(err.Error(), Key(app, id)) || !strings.Contains(err.Error(), DefaultBucket) {
			t.Fatalf("Load(%s) = %v, %v; want an error naming the key and bucket", id, st, err)
		}
	}
	// A value copied under another group's key is refused too.
	e, _ := b.kv.Get(ctx, Key(app, "good"))
	if _, err := b.kv.Put(ctx, Key(app, "copy"), e.Value()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "copy"); err == nil || !strings.Contains(err.Error(), `holds group "good"`) {
		t.Fatalf("copied value: %v", err)
	}
	if got, _, err := s.Load(ctx, "good"); err != nil || len(got.Members) != 2 {
		t.Fatalf("the good group: %v", err)
	}
}

func TestMissingBucketWithoutCreate(t *testing.T) {
	srv := natstest.Start(t, nil)
	c := testConfig(srv.URL())
	c.Create = false
	_, err := Open(context.Background(), c, zaptest.NewLogger(t))
	if !errors.Is(err, ErrNoBucket) || err.Error() != `state bucket "rollcall_state" does not exist (set state.create: true to create it)` {
		t.Fatalf("Open = %v", err)
	}
}

func TestCreateWithReplicas(t *testing.T) {
	servers := natstest.Cluster(t, 3, nil)
	c := testConfig(servers[0].URL(), servers[1].URL(), servers[2].URL())
	c.Replicas = 3
	b := open(t, c)
	ctx := context.Background()
	st, err := b.kv.Status(ctx)
	if err != nil || st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
		t.Fatalf("status: %v", err)
	}
	s := b.App(app)
	rev, err := s.Save(ctx, state("g", 2), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Stop the server that leads the bucket's stream (the client may be
	// on it too): writes and reads go on with the two others.
	js, err := jetstream.New(b.nc)
	if err != nil {
		t.Fatal(err)
	}
	leader := func() string {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := js.Stream(cctx, "KV_"+c.Bucket)
		if err != nil {
			return ""
		}
		info := st.CachedInfo()
		if info.Cluster == nil {
			return ""
		}
		return info.Cluster.Leader
	}
	old := leader()
	stopped := false
	for i, srv := range servers {
		if fmt.Sprintf("n%d", i) == old {
			srv.Stop()
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("no server leads the stream (leader %q)", old)
	}
	// Retry as the Detector would (next poll) until the two others
	// elected a new leader: a write whose ack was lost comes back as a
	// conflict, and the record is read again.
	var got *diff.State
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.Save(cctx, state("g", 3), rev)
		if err == nil {
			got, _, err = s.Load(cctx, "g")
		}
		var ce *diff.ConflictError
		if errors.As(err, &ce) {
			_, rev, _ = s.Load(cctx, "g")
		}
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write after a server stopped: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got.Members) != 3 {
		t.Fatalf("read %d members", len(got.Members))
	}
}

func TestServerDown(t *testing.T) {
	srv := natstest.Start(t, nil)
	b := open(t, testConfig(srv.URL()))
	s := b.App(app)
	ctx := context.Background()
	rev, err := s.Save(ctx, state("g", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for s.Healthy(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("still healthy with the server down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := s.Save(cctx, state("g", 2), rev); err == nil {
		t.Fatal("Save succeeded with the server down")
	}
	if _, _, err := s.Load(cctx, "g"); err == nil {
		t.Fatal("Load succeeded with the server down")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("calls took %s, past their context", d)
	}
	// Back up: the client reconnects, and the next good operation makes
	// the store healthy again.
	srv.Start()
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, _, err := s.Load(ctx, "g")
		if err == nil && s.Healthy(ctx) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy after the server came back: %v / %v", err, s.Healthy(ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestOpenUnreachable(t *testing.T) {
	srv := natstest.New(t, nil) // never started: nobody listens
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Open(ctx, testConfig(srv.URL()), zaptest.NewLogger(t))
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Open = %v, want ErrUnreachable", err)
	}
}

func TestClosed(t *testing.T) {
	srv := natstest.Start(t, nil)
	b := open(t, testConfig(srv.URL()))
	s := b.App(app)
	b.Close()
	ctx := context.Background()
	if _, _, err := s.Load(ctx, "g"); !errors.Is(err, diff.ErrClosed) {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, state("g", 1), 0); !errors.Is(err, diff.ErrClosed) {
		t.Fatal(err)
	}
	if err := s.Healthy(ctx); !errors.Is(err, diff.ErrClosed) {
		t.Fatal(err)
	}
}

// A reader of a chunked group never fails while another process rewrites
// it: a chunk purged under it sends it back to the entry.
func TestChunkedReadDuringRewrites(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t, func(o *server.Options) { o.MaxPayload = 8 * 1024 })
	wb := open(t, testConfig(srv.URL()))
	w := wb.App(app)
	r := open(t, testConfig(srv.URL())).App(app)
	const id = "churn"
	rev, err := w.Save(ctx, state(id, 5000), 0)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := wb.kv.Get(ctx, Key(app, id)); err != nil || e.Value()[0] != formatChunked {
		t.Fatalf("entry not chunked: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 20 && err == nil; i++ {
			rev, err = w.Save(ctx, state(id, 5000+i%2), rev)
		}
		done <- err
	}()
	for loads := 0; ; loads++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d loads during the rewrites", loads)
			return
		default:
		}
		got, _, err := r.Load(ctx, id)
		if err != nil {
			t.Fatalf("load during rewrites: %v", err)
		}
		if n := len(got.Members); n != 5000 && n != 5001 {
			t.Fatalf("loaded %d members", n)
		}
	}
}

func TestAuthRefusalIsNotAnOutage(t *testing.T) {
	srv := natstest.Start(t, func(o *server.Options) { o.Authorization = "s3cret-token" })
	c := testConfig(srv.URL())
	c.Token = "wrong"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, c, zaptest.NewLogger(t))
	if err == nil || errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("Open with a wrong token = %v; want a refusal, not an outage, without the token", err)
	}
	c.Token = "s3cret-token"
	s := open(t, c).App(app)
	if _, err := s.Save(ctx, state("g", 1), 0); err != nil {
		t.Fatal(err)
	}
}
