package schema_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
)

// The reflection encoding AppendJSON replaced, kept as the oracle it must
// match byte for byte.

type oracleMemberData struct {
	SDKAppID           uint64  `json:"sdkappid"`
	GroupID            string  `json:"group_id"`
	MemberAccount      string  `json:"member_account"`
	NickName           string  `json:"nick_name"`
	Avatar             string  `json:"avatar"`
	JoinTime           int64   `json:"join_time"`
	ObservedAt         string  `json:"observed_at"`
	PreviousObservedAt *string `json:"previous_observed_at"`
	Reason             string  `json:"reason"`
	OnlineSeconds      *int64  `json:"online_seconds,omitempty"`
}

type oracleGroupData struct {
	SDKAppID           uint64  `json:"sdkappid"`
	GroupID            string  `json:"group_id"`
	ObservedAt         string  `json:"observed_at"`
	PreviousObservedAt *string `json:"previous_observed_at"`
	Reason             string  `json:"reason"`
	MembersLeft        int     `json:"members_left"`
}

type oracleEnvelope struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject,omitempty"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	PartitionKey    string `json:"partitionkey"`
	Data            any    `json:"data"`
}

func oracleTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func oracleData(e schema.Event) any {
	d := e.Data
	var prev *string
	if d.PreviousObservedAt != nil {
		s := oracleTime(*d.PreviousObservedAt)
		prev = &s
	}
	if e.IsMemberEvent() {
		return oracleMemberData{
			SDKAppID: d.SDKAppID, GroupID: d.GroupID, MemberAccount: d.MemberAccount,
			NickName: d.NickName, Avatar: d.Avatar, JoinTime: d.JoinTime,
			ObservedAt: oracleTime(d.ObservedAt), PreviousObservedAt: prev,
			Reason: d.Reason, OnlineSeconds: d.OnlineSeconds,
		}
	}
	n := 0
	if d.MembersLeft != nil {
		n = *d.MembersLeft
	}
	return oracleGroupData{
		SDKAppID: d.SDKAppID, GroupID: d.GroupID, ObservedAt: oracleTime(d.ObservedAt),
		PreviousObservedAt: prev, Reason: d.Reason, MembersLeft: n,
	}
}

func oracleJSON(t testing.TB, e schema.Event) (event, data []byte) {
	t.Helper()
	data, err := json.Marshal(oracleData(e))
	if err != nil {
		t.Fatal(err)
	}
	event, err = json.Marshal(oracleEnvelope{
		SpecVersion: schema.SpecVersion, ID: e.ID, Source: e.Source, Type: e.Type,
		Subject: e.Subject, Time: oracleTime(e.Time), DataContentType: schema.DataContentType,
		PartitionKey: e.PartitionKey, Data: oracleData(e),
	})
	if err != nil {
		t.Fatal(err)
	}
	return event, data
}

// checkAgainstOracle compares every encoding entry point with the oracle.
func checkAgainstOracle(t testing.TB, e schema.Event) {
	t.Helper()
	wantEvent, wantData := oracleJSON(t, e)
	prefix := []byte("prefix")
	got, at := e.AppendJSONData(bytes.Clone(prefix))
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendJSONData overwrote dst: %q", got)
	}
	if g := got[len(prefix):]; !bytes.Equal(g, wantEvent) {
		t.Fatalf("AppendJSON differs from encoding/json for %#v:\n got %s\nwant %s", e, g, wantEvent)
	}
	if g := got[at : len(got)-1]; !bytes.Equal(g, wantData) {
		t.Fatalf("AppendJSONData's data span differs for %#v:\n got %s\nwant %s", e, g, wantData)
	}
	if g := e.AppendJSON(nil); !bytes.Equal(g, wantEvent) {
		t.Fatalf("AppendJSON(nil) = %s, want %s", g, wantEvent)
	}
	if g, _ := e.MarshalJSON(); !bytes.Equal(g, wantEvent) {
		t.Fatalf("MarshalJSON = %s, want %s", g, wantEvent)
	}
	if g, _ := json.Marshal(e); !bytes.Equal(g, wantEvent) {
		t.Fatalf("json.Marshal = %s, want %s", g, wantEvent)
	}
	if g, _ := e.MarshalData(); !bytes.Equal(g, wantData) {
		t.Fatalf("MarshalData = %s, want %s", g, wantData)
	}
}

// nasty are strings exercising every escaping rule of encoding/json.
var nasty = []string{
	"", "alice", `"quoted"`, `back\slash`, "<script>&amp;</script>", "\b\f\n\r\t",
	"\x00\x01\x1f\x7f", "line\u2028para\u2029", "bad\xffutf8\xc3", "\xe2\x80", "中文名字 😀",
	"@TGS#aRoom", "/tencent-im/1/groups/%40", "\u00e9\u0301", "\ufffd", "ok\xed\xa0\x80surrogate",
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return nasty[r.IntN(len(nasty))]
	}
	b := make([]byte, r.IntN(24))
	for i := range b {
		switch r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(256))
		case 1:
			b[i] = byte(r.IntN(0x20))
		default:
			b[i] = byte(' ' + r.IntN(0x5f))
		}
	}
	s := string(b)
	if r.IntN(4) == 0 {
		s += nasty[r.IntN(len(nasty))]
	}
	return s
}

func randTime(r *rand.Rand) time.Time {
	t := time.Unix(r.Int64N(4e9)-1e9, 0)
	switch r.IntN(3) {
	case 0:
		t = t.Add(time.Duration(r.IntN(1e9)))
	case 1:
		t = t.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
	}
	if r.IntN(2) == 0 {
		t = t.In(time.FixedZone("X", 3600*r.IntN(14)))
	}
	return t
}

func randEvent(r *rand.Rand) schema.Event {
	types := []string{schema.TypeMemberJoined, schema.TypeMemberLeft, schema.TypeGroupDismissed}
	typ := types[r.IntN(len(types))]
	if r.IntN(10) == 0 {
		typ = randString(r)
	}
	e := schema.Event{
		ID: randString(r), Source: randString(r), Type: typ, Subject: randString(r),
		Time: randTime(r), PartitionKey: randString(r),
		Data: schema.Data{
			SDKAppID: r.Uint64(), GroupID: randString(r), MemberAccount: randString(r),
			NickName: randString(r), Avatar: randString(r), JoinTime: r.Int64() - r.Int64(),
			ObservedAt: randTime(r), Reason: randString(r),
		},
	}
	if r.IntN(2) == 0 {
		p := randTime(r)
		e.Data.PreviousObservedAt = &p
	}
	if r.IntN(2) == 0 {
		n := r.Int64() - r.Int64()
		e.Data.OnlineSeconds = &n
	}
	if r.IntN(2) == 0 {
		n := r.IntN(1<<20) - 10
		e.Data.MembersLeft = &n
	}
	return e
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for name, ev := range goldenEvents() {
		t.Run(name, func(t *testing.T) { checkAgainstOracle(t, ev) })
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		checkAgainstOracle(t, randEvent(r))
	}
}

func FuzzAppendJSON(f *testing.F) {
	for i, s := range nasty {
		f.Add(s, s, uint8(i), int64(i)*1e9+int64(i), true, uint64(i))
	}
	f.Fuzz(func(t *testing.T, a, b string, kind uint8, nanos int64, prev bool, app uint64) {
		types := []string{schema.TypeMemberJoined, schema.TypeMemberLeft, schema.TypeGroupDismissed, a}
		tm := time.Unix(0, nanos)
		e := schema.Event{
			ID: a, Source: b, Type: types[int(kind)%len(types)], Subject: b, Time: tm,
			PartitionKey: a + b,
			Data: schema.Data{SDKAppID: app, GroupID: b, MemberAccount: a, NickName: strings.Repeat(b, 2),
				Avatar: a, JoinTime: nanos, ObservedAt: tm.Add(time.Second), Reason: b},
		}
		if prev {
			e.Data.PreviousObservedAt = &tm
			secs := -nanos
			e.Data.OnlineSeconds = &secs
			n := int(kind)
			e.Data.MembersLeft = &n
		}
		checkAgainstOracle(t, e)
	})
}

// BenchmarkEventMarshalJSONOracle is the reflection encoding
// BenchmarkEventMarshalJSON replaced, as the baseline of the same run
// (on the same live heap).
func BenchmarkEventMarshalJSONOracle(b *testing.B) {
	defer runtime.KeepAlive(liveHeap(32 << 20))
	ev := goldenEvents()["left"]
	b.ReportAllocs()
	for b.Loop() {
		oracleJSON(b, ev)
	}
}

func BenchmarkEventAppendJSON(b *testing.B) {
	ev := goldenEvents()["left"]
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
}

func TestJSONSizeHintHoldsTheJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		e := randEvent(r)
		// The hint is exact for strings without escapes.
		for _, s := range []*string{&e.ID, &e.Source, &e.Subject, &e.PartitionKey, &e.Data.GroupID,
			&e.Data.MemberAccount, &e.Data.NickName, &e.Data.Avatar, &e.Data.Reason} {
			*s = strings.Map(func(r rune) rune {
				if r < ' ' || r > '~' || strings.ContainsRune(`"\<>&`, r) {
					return 'x'
				}
				return r
			}, *s)
		}
		if n, hint := len(e.AppendJSON(nil)), e.JSONSizeHint(); n > hint {
			t.Fatalf("JSON of %d bytes over the hint %d: %s", n, hint, e.AppendJSON(nil))
		}
	}
}
