package schema_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0    = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	t1    = t0.Add(10 * time.Second)
	alice = schema.Member{Account: "alice", NickName: "Alice", Avatar: "https://example.com/a.png", JoinTime: 1795600000}
)

func goldenEvents() map[string]schema.Event {
	alice2 := alice
	alice2.JoinTime = alice.JoinTime + 7
	return map[string]schema.Event{
		"joined_baseline": schema.MemberJoined(1400000000, "@TGS#aRoom", alice, schema.ReasonBaseline, t0, nil),
		"joined":          schema.MemberJoined(1400000000, "@TGS#aRoom", alice, schema.ReasonJoined, t1, &t0),
		"left":            schema.MemberLeft(1400000000, "@TGS#aRoom", alice, schema.ReasonLeft, t1, &t0, t0),
		"left_rejoined":   schema.MemberLeft(1400000000, "@TGS#aRoom", alice, schema.ReasonRejoined, t1, &t0, t0),
		"joined_rejoined": schema.MemberJoined(1400000000, "@TGS#aRoom", alice2, schema.ReasonRejoined, t1, &t0),
		"left_dismissed":  schema.MemberLeft(1400000000, "@TGS#aRoom", alice, schema.ReasonGroupDismissed, t1, &t0, t0),
		"group_dismissed": schema.GroupDismissed(1400000000, "@TGS#aRoom", t1, &t0, 1),
	}
}

// TestGolden pins the wire format: a diff here breaks consumers.
func TestGolden(t *testing.T) {
	for name, ev := range goldenEvents() {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./schema -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("wire format changed for %s:\n got: %s\nwant: %s", name, got, want)
			}
			schematest.Validate(t, got)
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for name, ev := range goldenEvents() {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var back schema.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b2, _ := json.Marshal(back)
		if !bytes.Equal(b, b2) {
			t.Errorf("%s: round trip changed the event:\n%s\n%s", name, b, b2)
		}
		if !back.Time.Equal(ev.Time) || back.ID != ev.ID || back.Data.MemberAccount != ev.Data.MemberAccount {
			t.Errorf("%s: decoded %+v, want %+v", name, back, ev)
		}
	}
}

func TestUnmarshalRejectsOtherSpecVersion(t *testing.T) {
	var ev schema.Event
	err := json.Unmarshal([]byte(`{"specversion":"0.3","id":"x","time":"2026-01-01T00:00:00Z"}`), &ev)
	if err == nil || !strings.Contains(err.Error(), "specversion") {
		t.Fatalf("err = %v, want a specversion error", err)
	}
}

func TestEventIDDeterministicAndDistinct(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	base := schema.EventID(1400000000, "g", "alice", 100, schema.TypeMemberJoined)
	if !uuid.MatchString(base) {
		t.Fatalf("id %q is not a version-8 UUID", base)
	}
	if again := schema.EventID(1400000000, "g", "alice", 100, schema.TypeMemberJoined); again != base {
		t.Fatalf("id not deterministic: %s vs %s", base, again)
	}
	variants := []string{
		schema.EventID(1400000001, "g", "alice", 100, schema.TypeMemberJoined),
		schema.EventID(1400000000, "h", "alice", 100, schema.TypeMemberJoined),
		schema.EventID(1400000000, "g", "bob", 100, schema.TypeMemberJoined),
		schema.EventID(1400000000, "g", "alice", 101, schema.TypeMemberJoined),
		schema.EventID(1400000000, "g", "alice", 100, schema.TypeMemberLeft),
		// Concatenation must not collide: ("ga","lice") vs ("g","alice").
		schema.EventID(1400000000, "ga", "lice", 100, schema.TypeMemberJoined),
	}
	seen := map[string]bool{base: true}
	for i, v := range variants {
		if seen[v] {
			t.Errorf("variant %d collides: %s", i, v)
		}
		seen[v] = true
	}
	// The reason is not part of the id: a left event re-emitted as
	// group_dismissed is the same departure.
	a := schema.MemberLeft(1, "g", alice, schema.ReasonLeft, t1, &t0, t0)
	b := schema.MemberLeft(1, "g", alice, schema.ReasonGroupDismissed, t1, &t0, t0)
	if a.ID != b.ID {
		t.Errorf("left ids differ by reason: %s %s", a.ID, b.ID)
	}
}

func TestSourceEscapesGroupID(t *testing.T) {
	got := schema.Source(1400000000, "@TGS#a/b c")
	want := "/tencent-im/1400000000/groups/@TGS%23a%2Fb%20c"
	if got != want {
		t.Fatalf("Source = %q, want %q", got, want)
	}
}

func TestOnlineSecondsNeverNegative(t *testing.T) {
	m := alice
	m.JoinTime = t1.Unix() + 100 // clock skew between Tencent and us
	ev := schema.MemberLeft(1, "g", m, schema.ReasonLeft, t1, &t0, t0)
	if ev.Data.OnlineSeconds == nil || *ev.Data.OnlineSeconds != 0 {
		t.Fatalf("online_seconds = %v, want 0", ev.Data.OnlineSeconds)
	}
	ev = schema.MemberLeft(1, "g", alice, schema.ReasonLeft, t1, &t0, t0)
	if want := t0.Unix() - alice.JoinTime; *ev.Data.OnlineSeconds != want {
		t.Fatalf("online_seconds = %d, want %d", *ev.Data.OnlineSeconds, want)
	}
}

func TestSchemaRejectsBrokenEvents(t *testing.T) {
	good, _ := json.Marshal(goldenEvents()["left"])
	if err := schematest.ValidateJSON(good); err != nil {
		t.Fatalf("good event rejected: %v", err)
	}
	cases := map[string]func(m map[string]any){
		"missing id":          func(m map[string]any) { delete(m, "id") },
		"unknown type":        func(m map[string]any) { m["type"] = "rollcall.member.moved" },
		"bad reason":          func(m map[string]any) { m["data"].(map[string]any)["reason"] = "baseline" },
		"no online_seconds":   func(m map[string]any) { delete(m["data"].(map[string]any), "online_seconds") },
		"join_time as string": func(m map[string]any) { m["data"].(map[string]any)["join_time"] = "1" },
		"bad time":            func(m map[string]any) { m["time"] = "yesterday" },
		"extra attribute":     func(m map[string]any) { m["foo"] = 1 },
	}
	for name, mutate := range cases {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		b, _ := json.Marshal(m)
		if err := schematest.ValidateJSON(b); err == nil {
			t.Errorf("%s: accepted %s", name, b)
		}
	}
}

func TestNormalizeMembers(t *testing.T) {
	in := []schema.Member{
		{Account: "b", JoinTime: 5},
		{Account: "a", JoinTime: 1},
		{Account: "b", JoinTime: 9, NickName: "newer"},
		{Account: "a", JoinTime: 1},
	}
	got := schema.NormalizeMembers(in)
	want := []schema.Member{{Account: "a", JoinTime: 1}, {Account: "b", JoinTime: 9, NickName: "newer"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// BenchmarkEventMarshalJSON encodes one event in a process holding a
// daemon's live heap (liveHeap): what an event costs where rollcall runs.
// Its one allocation costs most of its time, and that cost depends on the
// heap around it: in an empty test binary the collector runs every 4 MiB
// (~7,000 events) and returns pages the next events fault in again, which
// BenchmarkEventMarshalJSONEmptyHeap shows.
func BenchmarkEventMarshalJSON(b *testing.B) {
	defer runtime.KeepAlive(liveHeap(32 << 20))
	ev := goldenEvents()["left"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventMarshalJSONEmptyHeap(b *testing.B) {
	ev := goldenEvents()["left"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// liveHeap allocates n bytes of long-lived 1 KiB objects, as a daemon's
// state is (32 MiB: the members of some 200,000 listings), so that a
// benchmark's garbage is collected at a daemon's pace.
func liveHeap(n int) [][]byte {
	h := make([][]byte, 0, n>>10)
	for range n >> 10 {
		h = append(h, make([]byte, 1<<10))
	}
	runtime.GC()
	return h
}
