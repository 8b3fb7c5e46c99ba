// Package natsstore is the shared diff.Store: every group's state and
// outbox in one NATS JetStream KV bucket, so that several rollcall
// processes can share the state of the groups and fence each other off.
//
// # Entries
//
// A group has one entry, under Key(sdkappid, group id), holding its
// committed state and its outbox together: the entry's revision (its
// stream sequence) is the diff.Revision, and every write is a
// compare-and-set on it (kv.Create for base 0, kv.Update otherwise). A
// write refused for its revision is a *diff.ConflictError.
//
// An entry's value starts with one format byte:
//
//	1 (inline)   the body follows.
//	2 (chunked)  a JSON manifest follows; the body is the concatenation
//	             of the chunk entries it names, verified by its SHA-256.
//
// The body is uvarint(len(S)) S O, where S and O are the zstd-compressed
// JSON of the committed state and of the outbox, each empty when absent.
// Keeping them apart lets SaveOutbox keep the state's compressed bytes as
// they are. A future format takes a new format byte.
//
// # Values over the server's max_payload
//
// A body that does not fit one message (the server's max_payload, less a
// margin for headers) is split into chunks, written first under
// "<key>.c.<write id>.<n>" (a random id per write, so no two writes share
// a chunk), then the entry is written with a manifest naming them by
// their revisions. After the entry's CAS succeeds, the chunks of the
// revision it replaced are purged; after it is refused, the write's own
// chunks are. A reader that finds a chunk gone reads the entry again: it
// was replaced meanwhile. (A KV stream denies deleting messages, so each
// purge leaves a small marker; CollectChunks removes old markers.)
//
// A crash, or a write whose outcome is unknown (a timeout: the entry may
// or may not have been written, so its chunks are kept), can leave orphan
// chunks: entries no manifest names. They are harmless — never listed as
// groups, never read — and CollectChunks removes those older than a given
// age (old enough that no write in flight can still name them), and the
// purge markers of that age. It reads the whole bucket: run it rarely
// (hourly, say), from one replica or several (it is idempotent).
//
// # Connection
//
// Open connects (the client then reconnects for ever) and binds the
// bucket. A start without any reachable server is an error wrapping
// ErrUnreachable, so the daemon can stay alive, not ready, and call Open
// again; a missing bucket (without Create) or a refused login is a
// configuration error.
package natsstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/schema"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
)

// Value format bytes.
const (
	formatInline  byte = 1
	formatChunked byte = 2
)

// headerMargin is what a KV write's headers may take of max_payload
// (Nats-Expected-Last-Subject-Sequence and the like).
const headerMargin = 512

// ErrUnreachable is wrapped by Open's error when no server answered: an
// outage, not a configuration error; Open may be called again.
var ErrUnreachable = errors.New("nats state: no server reachable")

// ErrNoBucket is matched (errors.Is) by Open's error for a missing
// bucket when Config.Create is not set.
var ErrNoBucket = errors.New("state bucket does not exist")

type noBucketError string

func (b noBucketError) Error() string {
	return fmt.Sprintf("state bucket %q does not exist (set state.create: true to create it)", string(b))
}

func (noBucketError) Is(target error) bool { return target == ErrNoBucket }

// Bucket is a connection to the state bucket. App gives the diff.Store of
// one SDKAppID; all of them share the connection.
type Bucket struct {
	name string
	nc   *natsgo.Conn
	kv   jetstream.KeyValue
	log  *zap.Logger

	// lastErr is the outcome of the last KV operation that reached (or
	// failed to reach) the server: nil, or why it failed. Healthy reports
	// it without I/O.
	lastErr atomic.Pointer[error]

	closing  atomic.Bool
	closedCh chan struct{}
	once     sync.Once
}

// Open connects to cfg's servers and binds the bucket, creating it when
// cfg.Create is set. cfg must have passed SetDefaults and Validate. ctx
// bounds the connection attempt and the bucket lookup.
func Open(ctx context.Context, cfg Config, logger *zap.Logger) (*Bucket, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	b := &Bucket{name: cfg.Bucket, log: logger.Named("natsstore").With(zap.String("bucket", cfg.Bucket)), closedCh: make(chan struct{})}
	o := cfg.conn()
	auth, err := natssink.AuthOptions(o)
	if err != nil {
		return nil, err
	}
	opts := append([]natsgo.Option{
		natsgo.Name(o.Name),
		natsgo.MaxReconnects(-1),
		// A write while disconnected must fail, not wait in a buffer the
		// client may drop.
		natsgo.ReconnectBufSize(-1),
		natsgo.IgnoreAuthErrorAbort(),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if !b.closing.Load() {
				b.log.Warn("disconnected from nats", zap.Error(err))
			}
		}),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			b.log.Info("reconnected to nats", zap.String("server", nc.ConnectedUrlRedacted()))
		}),
		natsgo.ClosedHandler(func(*natsgo.Conn) { b.once.Do(func() { close(b.closedCh) }) }),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			b.log.Warn("nats async error", zap.Error(err))
		}),
	}, auth...)
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 && d < 2*time.Second {
			opts = append(opts, natsgo.Timeout(d))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	nc, err := natsgo.Connect(strings.Join(cfg.URL, ","), opts...)
	if err != nil {
		if natssink.Unreachable(err) {
			return nil, fmt.Errorf("connect to nats: %w: %w", ErrUnreachable, err)
		}
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	b.nc = nc
	if err := b.bind(ctx, cfg); err != nil {
		b.Close()
		return nil, err
	}
	b.log.Info("state bucket bound", zap.String("server", nc.ConnectedUrlRedacted()))
	return b, nil
}

func (b *Bucket) bind(ctx context.Context, cfg Config) error {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound) && !cfg.Create:
		return noBucketError(cfg.Bucket)
	case errors.Is(err, jetstream.ErrBucketNotFound):
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      cfg.Bucket,
			Description: "rollcall group state",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile by another replica
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
		if err != nil {
			return fmt.Errorf("create state bucket %q: %w", cfg.Bucket, outage(err))
		}
		b.log.Info("created state bucket", zap.Int("replicas", cfg.Replicas))
	case err != nil:
		return fmt.Errorf("state bucket %q: %w", cfg.Bucket, outage(err))
	}
	b.kv = kv
	return nil
}

// outage marks err as ErrUnreachable when it says that no server
// answered in time rather than that one refused.
func outage(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, natsgo.ErrTimeout) ||
		errors.Is(err, natsgo.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, natsgo.ErrConnectionClosed) || errors.Is(err, natsgo.ErrDisconnected) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Close drains the connection and waits until it is closed. Stores of the
// bucket then fail with diff.ErrClosed.
func (b *Bucket) Close() error {
	if b.closing.Swap(true) {
		<-b.closedCh
		return nil
	}
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
	}
	<-b.closedCh
	return nil
}

// note records the outcome of a KV operation for Healthy. Answers that
// are not failures of the store (absent key, conflict) count as success;
// a caller's own cancellation says nothing about the store.
func (b *Bucket) note(ctx context.Context, err error) {
	switch {
	case err == nil, errors.Is(err, jetstream.ErrKeyNotFound), conflict(err):
		b.lastErr.Store(nil)
	case ctx.Err() != nil:
	default:
		b.lastErr.Store(&err)
	}
}

func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// Healthy implements diff.HealthChecker for every Store of the bucket:
// no I/O, only the connection's status and the last operation's outcome.
func (b *Bucket) Healthy(context.Context) error {
	if b.closing.Load() {
		return diff.ErrClosed
	}
	if st := b.nc.Status(); st != natsgo.CONNECTED {
		return fmt.Errorf("state bucket %s: nats %s", b.name, st)
	}
	if p := b.lastErr.Load(); p != nil {
		return fmt.Errorf("state bucket %s: last operation failed: %w", b.name, *p)
	}
	return nil
}

// Apps returns the SDKAppIDs with at least one group in the bucket,
// sorted.
func (b *Bucket) Apps(ctx context.Context) ([]uint64, error) {
	keys, err := b.keys(ctx, "*.*")
	if err != nil {
		return nil, err
	}
	var apps []uint64
	for _, k := range keys {
		if app, _, ok := ParseKey(k); ok {
			apps = append(apps, app)
		}
	}
	slices.Sort(apps)
	return slices.Compact(apps), nil
}

func (b *Bucket) keys(ctx context.Context, filter string) ([]string, error) {
	if b.closing.Load() {
		return nil, diff.ErrClosed
	}
	l, err := b.kv.ListKeysFiltered(ctx, filter)
	b.note(ctx, err)
	if err != nil {
		return nil, fmt.Errorf("list state bucket %s: %w", b.name, err)
	}
	defer l.Stop()
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, ctx.Err()
}

// CollectChunks purges chunk entries that no group's current entry names
// and that were written more than age ago (so that no write still in
// flight can name them): what crashes and writes of unknown outcome
// leave. Then it removes the delete and purge markers older than age
// (all of them for age 0). It returns how many chunks it purged.
func (b *Bucket) CollectChunks(ctx context.Context, age time.Duration) (int, error) {
	keys, err := b.keys(ctx, "*.*.c.*.*")
	if err != nil {
		return 0, err
	}
	live := map[string]string{} // entry key → write id its manifest names
	n := 0
	for _, k := range keys {
		parts := strings.Split(k, ".")
		entry, wid := parts[0]+"."+parts[1], parts[3]
		cur, seen := live[entry]
		if !seen {
			cur = b.manifestID(ctx, entry)
			live[entry] = cur
		}
		if cur == wid {
			continue
		}
		e, err := b.kv.Get(ctx, k)
		b.note(ctx, err)
		if err != nil || time.Since(e.Created()) < age {
			continue
		}
		err = b.kv.Purge(ctx, k, jetstream.LastRevision(e.Revision()))
		b.note(ctx, err)
		if err != nil {
			return n, fmt.Errorf("purge chunk %s: %w", k, err)
		}
		n++
	}
	thr := age
	if thr <= 0 {
		thr = -1 // PurgeDeletes: every marker
	}
	if err := b.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(thr)); err != nil {
		b.note(ctx, err)
		return n, fmt.Errorf("purge markers of state bucket %s: %w", b.name, err)
	}
	return n, nil
}

// CollectChunksEvery runs CollectChunks(ctx, every) every interval
// until ctx ends: chunks older than the interval, so that no write in
// flight loses its chunks. It logs what it collected and what failed.
func (b *Bucket) CollectChunksEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := b.CollectChunks(ctx, every)
		switch {
		case err != nil && ctx.Err() == nil:
			b.log.Warn("collecting orphan chunks failed; trying again later", zap.Duration("every", every), zap.Error(err))
		case n > 0:
			b.log.Info("collected orphan chunks", zap.Int("chunks", n))
		}
	}
}

// manifestID is the write id of entry's manifest, or "" when it has none.
func (b *Bucket) manifestID(ctx context.Context, entry string) string {
	e, err := b.kv.Get(ctx, entry)
	if err != nil || len(e.Value()) == 0 || e.Value()[0] != formatChunked {
		return ""
	}
	var m manifest
	if json.Unmarshal(e.Value()[1:], &m) != nil {
		return ""
	}
	return m.ID
}

// App returns the diff.Store of one SDKAppID's groups.
func (b *Bucket) App(sdkappid uint64) *Store {
	return &Store{b: b, app: sdkappid, cache: make(map[string]cached)}
}

// Store is the diff.Store of one app's groups in a Bucket. It is safe for
// concurrent use.
type Store struct {
	b   *Bucket
	app uint64

	mu sync.Mutex
	// cache holds, per group, what this Store last read or wrote: the
	// revision, the committed state's compressed bytes (which SaveOutbox
	// writes back unchanged) and the chunks of that revision (which the
	// next write deletes once it replaced them).
	cache map[string]cached
}

type cached struct {
	rev    diff.Revision
	state  []byte
	chunks []string // keys
}

var (
	_ diff.Store         = (*Store)(nil)
	_ diff.Lister        = (*Store)(nil)
	_ diff.Forgetter     = (*Store)(nil)
	_ diff.HealthChecker = (*Store)(nil)
)

// manifest is the value of a chunked entry after its format byte.
type manifest struct {
	ID     string   `json:"id"`     // the write id in the chunks' keys
	Chunks []uint64 `json:"chunks"` // their revisions, in order
	Size   int      `json:"size"`   // the body's length
	SHA256 string   `json:"sha256"` // the body's hash, hex
}

// record is the JSON of a committed state or an outbox, with the group
// it belongs to so that a value copied under another key is refused.
type record struct {
	Version int            `json:"version"`
	GroupID string         `json:"group_id"`
	State   *diff.State    `json:"state,omitempty"`
	Events  []schema.Event `json:"events,omitempty"`
	Next    *diff.State    `json:"next,omitempty"`
}

var (
	encOnce sync.Once
	encoder *zstd.Encoder
	decoder *zstd.Decoder
)

// codec returns the shared zstd encoder and decoder; EncodeAll and
// DecodeAll are safe for concurrent use and start no goroutines.
func codec() (*zstd.Encoder, *zstd.Decoder) {
	encOnce.Do(func() {
		var err error
		if encoder, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1)); err != nil {
			panic(err)
		}
		if decoder, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30)); err != nil {
			panic(err)
		}
	})
	return encoder, decoder
}

func compress(r record) ([]byte, error) {
	j, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	enc, _ := codec()
	return enc.EncodeAll(j, nil), nil
}

func decompress(z []byte, groupID string) (*record, error) {
	_, dec := codec()
	j, err := dec.DecodeAll(z, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	var r record
	if err := json.Unmarshal(j, &r); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	switch {
	case r.Version != diff.StateVersion:
		return nil, fmt.Errorf("version %d, this rollcall reads %d", r.Version, diff.StateVersion)
	case r.GroupID != groupID:
		return nil, fmt.Errorf("holds group %q, not %q", r.GroupID, groupID)
	}
	return &r, nil
}

func body(state, outbox []byte) []byte {
	out := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(state)+len(outbox)), uint64(len(state)))
	return append(append(out, state...), outbox...)
}

func splitBody(b []byte) (state, outbox []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, errors.New("malformed body")
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

func (s *Store) key(groupID string) (string, error) {
	if groupID == "" {
		return "", errors.New("no group id")
	}
	return Key(s.app, groupID), nil
}

// keyError names the bucket and key an error is about.
func (s *Store) keyError(key string, err error) error {
	return fmt.Errorf("state bucket %s key %s: %w", s.b.name, key, err)
}

// Load implements diff.Store. A value that cannot be decoded is an error
// naming its key, never "no state".
func (s *Store) Load(ctx context.Context, groupID string) (*diff.State, diff.Revision, error) {
	if s.b.closing.Load() {
		return nil, 0, diff.ErrClosed
	}
	key, err := s.key(groupID)
	if err != nil {
		return nil, 0, fmt.Errorf("load state: %w", err)
	}
	// A chunk gone missing means the entry was replaced after it was
	// read: read it again, a few times.
	for attempt := 0; ; attempt++ {
		st, rev, missing, err := s.load(ctx, key, groupID)
		if missing && attempt < 10 && ctx.Err() == nil {
			continue
		}
		return st, rev, err
	}
}

func (s *Store) load(ctx context.Context, key, groupID string) (_ *diff.State, _ diff.Revision, missing bool, _ error) {
	e, err := s.b.kv.Get(ctx, key)
	s.b.note(ctx, err)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		s.remember(groupID, cached{})
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, s.keyError(key, err)
	}
	rev := diff.Revision(e.Revision())
	b, chunks, err := s.read(ctx, key, e.Value())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, true, s.keyError(key, fmt.Errorf("a chunk is missing: %w", err))
	}
	if err != nil {
		return nil, 0, false, s.keyError(key, err)
	}
	st, stZ, err := decodeBody(b, groupID)
	if err != nil {
		return nil, 0, false, s.keyError(key, err)
	}
	s.remember(groupID, cached{rev: rev, state: stZ, chunks: chunks})
	return st, rev, false, nil
}

// decodeBody decodes a value's body (see the package doc) into groupID's
// state and outbox, checking both belong to it; stZ is the state's part.
func decodeBody(b []byte, groupID string) (st *diff.State, stZ []byte, err error) {
	stZ, obZ, err := splitBody(b)
	if err != nil {
		return nil, nil, err
	}
	if len(stZ) > 0 {
		r, err := decompress(stZ, groupID)
		if err != nil {
			return nil, nil, fmt.Errorf("state: %w", err)
		}
		if r.State == nil || r.State.GroupID != groupID {
			return nil, nil, errors.New("state: no state of the group")
		}
		st = r.State
	}
	if len(obZ) > 0 {
		r, err := decompress(obZ, groupID)
		if err != nil {
			return nil, nil, fmt.Errorf("outbox: %w", err)
		}
		p := &diff.Pending{Events: r.Events, Next: r.Next}
		if err := p.Check(groupID); err != nil {
			return nil, nil, fmt.Errorf("outbox: %w", err)
		}
		if st == nil {
			st = diff.OutboxOnly(groupID, p)
		} else {
			st.Pending = p
		}
	}
	if st == nil {
		return nil, nil, errors.New("entry holds neither state nor outbox")
	}
	return st, stZ, nil
}

// read returns the body of an entry's value and the keys of its chunks,
// fetching and verifying them for a chunked value.
func (s *Store) read(ctx context.Context, key string, v []byte) ([]byte, []string, error) {
	if len(v) == 0 {
		return nil, nil, errors.New("empty value")
	}
	switch v[0] {
	case formatInline:
		return v[1:], nil, nil
	case formatChunked:
	default:
		return nil, nil, fmt.Errorf("unknown value format %d", v[0])
	}
	var m manifest
	if err := json.Unmarshal(v[1:], &m); err != nil {
		return nil, nil, fmt.Errorf("decode chunk manifest: %w", err)
	}
	if m.Size < 0 || m.Size > 1<<30 {
		return nil, nil, fmt.Errorf("chunk manifest: size %d", m.Size)
	}
	out := make([]byte, 0, m.Size)
	keys := m.keys(key)
	for i, rev := range m.Chunks {
		ck := keys[i]
		e, err := s.b.kv.Get(ctx, ck)
		s.b.note(ctx, err)
		if err != nil {
			return nil, nil, fmt.Errorf("chunk %s: %w", ck, err)
		}
		if e.Revision() != rev {
			return nil, nil, fmt.Errorf("chunk %s: revision %d, the manifest names %d", ck, e.Revision(), rev)
		}
		out = append(out, e.Value()...)
	}
	sum := sha256.Sum256(out)
	if len(out) != m.Size || hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, nil, errors.New("chunks do not match the manifest's size and hash")
	}
	return out, keys, nil
}

func chunkKey(key, id string, n int) string {
	return key + ".c." + id + "." + strconv.Itoa(n)
}

func (m *manifest) keys(key string) []string {
	keys := make([]string, len(m.Chunks))
	for i := range keys {
		keys[i] = chunkKey(key, m.ID, i)
	}
	return keys
}

func (s *Store) remember(groupID string, c cached) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.rev == 0 {
		delete(s.cache, groupID)
		return
	}
	s.cache[groupID] = c
}

func (s *Store) cached(groupID string) cached {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache[groupID]
}

// Save implements diff.Store: the state, and no outbox, in one write.
func (s *Store) Save(ctx context.Context, st *diff.State, base diff.Revision) (diff.Revision, error) {
	if st == nil || st.GroupID == "" {
		return 0, errors.New("save state: no group id")
	}
	c := *st
	c.Pending = nil
	z, err := compress(record{Version: diff.StateVersion, GroupID: st.GroupID, State: &c})
	if err != nil {
		return 0, fmt.Errorf("encode state of %s: %w", st.GroupID, err)
	}
	return s.write(ctx, st.GroupID, z, nil, base)
}

// SaveOutbox implements diff.Store: the outbox beside the committed state
// of revision base, which this Store read or wrote (else it reads it).
func (s *Store) SaveOutbox(ctx context.Context, groupID string, p *diff.Pending, base diff.Revision) (diff.Revision, error) {
	if err := p.Check(groupID); err != nil {
		return 0, err
	}
	z, err := compress(record{Version: diff.StateVersion, GroupID: groupID, Events: p.Events, Next: p.Next})
	if err != nil {
		return 0, fmt.Errorf("encode outbox of %s: %w", groupID, err)
	}
	var state []byte
	if base != 0 {
		c := s.cached(groupID)
		if c.rev != base {
			// Not read here at base: read it, which also tells whether
			// base is still the stored revision.
			if _, _, err := s.Load(ctx, groupID); err != nil {
				return 0, err
			}
			if c = s.cached(groupID); c.rev != base {
				return 0, &diff.ConflictError{GroupID: groupID, Base: base, Current: c.rev}
			}
		}
		state = c.state
	}
	return s.write(ctx, groupID, state, z, base)
}

// write stores body(state, outbox) as groupID's entry if its revision is
// base.
func (s *Store) write(ctx context.Context, groupID string, state, outbox []byte, base diff.Revision) (diff.Revision, error) {
	if s.b.closing.Load() {
		return 0, diff.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	key, err := s.key(groupID)
	if err != nil {
		return 0, fmt.Errorf("save state: %w", err)
	}
	value, chunks, err := s.value(ctx, key, body(state, outbox))
	if err != nil {
		s.deleteChunks(ctx, chunks)
		return 0, s.keyError(key, err)
	}
	var rev uint64
	if base == 0 {
		rev, err = s.b.kv.Create(ctx, key, value)
	} else {
		rev, err = s.b.kv.Update(ctx, key, value, uint64(base))
	}
	s.b.note(ctx, err)
	if err != nil {
		if !conflict(err) {
			// The write may have happened (a lost ack): keep its chunks,
			// and forget what this Store knew of the group.
			s.remember(groupID, cached{})
			return 0, s.keyError(key, err)
		}
		s.deleteChunks(ctx, chunks) // nobody else names them
		s.remember(groupID, cached{})
		return 0, &diff.ConflictError{GroupID: groupID, Base: base, Current: s.current(ctx, key)}
	}
	if old := s.cached(groupID); old.rev == base {
		s.deleteChunks(ctx, old.chunks) // of the revision just replaced
	}
	s.remember(groupID, cached{rev: diff.Revision(rev), state: state, chunks: chunks})
	return diff.Revision(rev), nil
}

// current is key's revision, best effort (0 when unknown or absent), for
// a conflict's message.
func (s *Store) current(ctx context.Context, key string) diff.Revision {
	e, err := s.b.kv.Get(ctx, key)
	if err != nil {
		return 0
	}
	return diff.Revision(e.Revision())
}

// value is the entry's value for b: inline when it fits one message,
// else a manifest of chunks it writes first. It returns the keys of the
// chunks it wrote, also on error.
func (s *Store) value(ctx context.Context, key string, b []byte) ([]byte, []string, error) {
	limit := int(s.b.nc.MaxPayload()) - headerMargin
	if limit < 1024 {
		limit = 1024
	}
	if 1+len(b) <= limit {
		return append([]byte{formatInline}, b...), nil, nil
	}
	var id [12]byte
	rand.Read(id[:])
	m := manifest{ID: hex.EncodeToString(id[:]), Size: len(b)}
	sum := sha256.Sum256(b)
	m.SHA256 = hex.EncodeToString(sum[:])
	for i := 0; len(b) > 0; i++ {
		part := b[:min(limit, len(b))]
		b = b[len(part):]
		ck := chunkKey(key, m.ID, i)
		rev, err := s.b.kv.Put(ctx, ck, part)
		s.b.note(ctx, err)
		if err != nil {
			// Perhaps written: purge it with the others.
			return nil, append(m.keys(key), ck), fmt.Errorf("write chunk %d: %w", i, err)
		}
		m.Chunks = append(m.Chunks, rev)
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, m.keys(key), err
	}
	return append([]byte{formatChunked}, j...), m.keys(key), nil
}

// deleteChunks purges chunks, best effort: one left behind is an orphan
// CollectChunks removes.
func (s *Store) deleteChunks(ctx context.Context, keys []string) {
	for _, k := range keys {
		err := s.b.kv.Purge(ctx, k)
		s.b.note(ctx, err)
		if err != nil {
			s.b.log.Warn("could not purge a state chunk; CollectChunks will", zap.String("key", k), zap.Error(err))
		}
	}
}

// List implements diff.Lister: the app's groups with an entry (state, or
// an outbox only), sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	keys, err := s.b.keys(ctx, strconv.FormatUint(s.app, 10)+".*")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if app, id, ok := ParseKey(k); ok && app == s.app {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Forget implements diff.Forgetter: purges the group's entry, so that a
// write based on an earlier revision conflicts, then deletes its chunks.
func (s *Store) Forget(ctx context.Context, groupID string) error {
	if s.b.closing.Load() {
		return diff.ErrClosed
	}
	key, err := s.key(groupID)
	if err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	var chunks []string
	if e, err := s.b.kv.Get(ctx, key); err == nil && len(e.Value()) > 0 && e.Value()[0] == formatChunked {
		var m manifest
		if json.Unmarshal(e.Value()[1:], &m) == nil {
			chunks = m.keys(key)
		}
	}
	err = s.b.kv.Purge(ctx, key)
	s.b.note(ctx, err)
	if err != nil {
		return s.keyError(key, err)
	}
	s.remember(groupID, cached{})
	s.deleteChunks(ctx, chunks)
	return nil
}

// Healthy implements diff.HealthChecker; see Bucket.Healthy.
func (s *Store) Healthy(ctx context.Context) error { return s.b.Healthy(ctx) }
