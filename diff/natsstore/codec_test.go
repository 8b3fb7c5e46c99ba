package natsstore

import (
	"reflect"
	"testing"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/schema"
)

func encodeT(t testing.TB, st *diff.State, p *diff.Pending) []byte {
	t.Helper()
	var sz, oz []byte
	var err error
	if st != nil {
		if sz, err = compress(record{Version: diff.StateVersion, GroupID: st.GroupID, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	if p != nil {
		if oz, err = compress(record{Version: diff.StateVersion, GroupID: p.Next.GroupID, Events: p.Events, Next: p.Next}); err != nil {
			t.Fatal(err)
		}
	}
	return body(sz, oz)
}

func TestBodyRoundTrips(t *testing.T) {
	st := state("g", 5)
	p := &diff.Pending{Events: []schema.Event{{ID: "e"}}, Next: state("g", 6)}
	for _, tc := range []struct {
		st *diff.State
		p  *diff.Pending
	}{{st, nil}, {nil, p}, {st, p}} {
		got, _, err := decodeBody(encodeT(t, tc.st, tc.p), "g")
		if err != nil {
			t.Fatal(err)
		}
		want := tc.st.Clone()
		if want == nil {
			want = diff.OutboxOnly("g", tc.p)
		}
		gotP := got.Pending
		got.Pending, want.Pending = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if (gotP == nil) != (tc.p == nil) || gotP != nil && (!reflect.DeepEqual(gotP.Next, tc.p.Next) || gotP.Events[0].ID != "e") {
			t.Fatalf("outbox %+v, want %+v", gotP, tc.p)
		}
	}
	if _, _, err := decodeBody(encodeT(t, st, nil), "other"); err == nil {
		t.Fatal("another group's body accepted")
	}
	if _, _, err := decodeBody(body(nil, nil), "g"); err == nil {
		t.Fatal("an empty body accepted")
	}
}

// FuzzDecodeBody: any bytes give a state of the group or an error, never
// a panic or "no state".
func FuzzDecodeBody(f *testing.F) {
	f.Add(encodeT(f, state("g", 2), nil))
	f.Add(encodeT(f, state("g", 1), &diff.Pending{Events: []schema.Event{{ID: "e"}}, Next: state("g", 2)}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, _, err := decodeBody(b, "g")
		if err == nil && (st == nil || st.GroupID != "g") {
			t.Fatalf("decodeBody = %+v without error", st)
		}
	})
}
