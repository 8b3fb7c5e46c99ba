package diff

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
)

// fuzzMembers decodes one member per byte: the low 4 bits pick the account
// (so sets overlap a lot), the high 4 bits the JoinTime (so rejoins occur).
// Duplicate accounts are left in: Diff must normalise them.
func fuzzMembers(b []byte) []schema.Member {
	ms := make([]schema.Member, 0, len(b))
	for _, c := range b {
		acc := fmt.Sprintf("user%02d", c&0x0f)
		ms = append(ms, schema.Member{Account: acc, NickName: fmt.Sprintf("n%d", c), JoinTime: j0 + int64(c>>4)})
	}
	return ms
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte{}, []byte{}, uint8(0))
	f.Add([]byte{0x01, 0x02, 0x03}, []byte{0x02, 0x03, 0x04}, uint8(2))
	f.Add([]byte{0x01, 0x11, 0x21}, []byte{0x31, 0x01}, uint8(1))
	f.Add([]byte{0x00, 0x10, 0x20, 0x30, 0x40, 0x5f}, []byte{0xf0, 0xe1, 0xd2, 0xc3}, uint8(3))
	f.Add([]byte{0xff, 0x0f, 0x7a, 0x7a}, []byte{}, uint8(4))
	f.Fuzz(func(t *testing.T, a, b []byte, smallCap uint8) {
		complete := Options{}
		snapA := snapAt(t1, fuzzMembers(a)...)
		snapB := snapAt(t2, fuzzMembers(b)...)

		baseline, prev := Diff(nil, snapA, complete)
		checkIDsUnique(t, baseline)
		oldSet := replay(t, map[string]schema.Member{}, baseline)
		wantA := asSet(schema.NormalizeMembers(fuzzMembers(a)))
		if !reflect.DeepEqual(oldSet, wantA) {
			t.Fatalf("baseline replay: got %v, want %v", oldSet, wantA)
		}

		events, next := Diff(prev, snapB, complete)
		checkIDsUnique(t, events)
		wantB := asSet(schema.NormalizeMembers(fuzzMembers(b)))
		if got := replay(t, oldSet, events); !reflect.DeepEqual(got, wantB) {
			t.Fatalf("replay: got %v, want %v", got, wantB)
		}
		if got := trackedSet(t, next); !reflect.DeepEqual(got, wantB) {
			t.Fatalf("next state: got %v, want %v", got, wantB)
		}
		again, next2 := Diff(prev, snapB, complete)
		if !reflect.DeepEqual(events, again) || !reflect.DeepEqual(next, next2) {
			t.Fatal("Diff is not deterministic")
		}

		// Truncated snapshots: weaker invariants, but they must hold.
		// As the lister marks it at a member cap of smallCap%8+1.
		truncB := snapB
		truncB.Truncated = len(wantB) >= int(smallCap%8)+1
		events, next = Diff(prev, truncB, Options{})
		checkIDsUnique(t, events)
		for _, m := range wantB {
			if !containsTracked(next, m, false) {
				t.Fatalf("listed member %+v not in view in next state", m)
			}
		}
		for _, tm := range next.Members {
			if tm.OutOfView && (!next.Truncated || tm.JoinTime > next.Boundary) {
				t.Fatalf("member %+v out of view above boundary %d (truncated %v)", tm, next.Boundary, next.Truncated)
			}
		}
		for _, e := range events {
			_, listed := wantB[e.Data.MemberAccount]
			if e.Type == schema.TypeMemberLeft && e.Data.Reason == schema.ReasonLeft && listed {
				t.Fatalf("left event for listed member %s", e.Data.MemberAccount)
			}
			if e.Type == schema.TypeMemberJoined && !listed {
				t.Fatalf("joined event for unlisted member %s", e.Data.MemberAccount)
			}
		}
	})
}

func asSet(ms []schema.Member) map[string]schema.Member {
	s := make(map[string]schema.Member, len(ms))
	for _, m := range ms {
		s[m.Account] = m
	}
	return s
}

func trackedSet(t *testing.T, s *State) map[string]schema.Member {
	t.Helper()
	out := make(map[string]schema.Member, len(s.Members))
	for i, m := range s.Members {
		if i > 0 && s.Members[i-1].Account >= m.Account {
			t.Fatalf("state members not sorted and unique at %d: %q, %q", i, s.Members[i-1].Account, m.Account)
		}
		out[m.Account] = m.Member
	}
	return out
}

func containsTracked(s *State, m schema.Member, outOfView bool) bool {
	for _, tm := range s.Members {
		if tm.Member == m && tm.OutOfView == outOfView {
			return true
		}
	}
	return false
}

// replay applies events to a member set the way a consumer would.
func replay(t *testing.T, set map[string]schema.Member, events []schema.Event) map[string]schema.Member {
	t.Helper()
	out := make(map[string]schema.Member, len(set))
	for k, v := range set {
		out[k] = v
	}
	for _, e := range events {
		acc := e.Data.MemberAccount
		switch e.Type {
		case schema.TypeMemberLeft:
			m, ok := out[acc]
			if !ok || m.JoinTime != e.Data.JoinTime {
				t.Fatalf("left event for %s (join %d) not matching the set: %+v, %v", acc, e.Data.JoinTime, m, ok)
			}
			delete(out, acc)
		case schema.TypeMemberJoined:
			if _, ok := out[acc]; ok {
				t.Fatalf("joined event for %s already in the set", acc)
			}
			out[acc] = schema.Member{Account: acc, NickName: e.Data.NickName, Avatar: e.Data.Avatar, JoinTime: e.Data.JoinTime}
		default:
			t.Fatalf("unexpected event type %s", e.Type)
		}
	}
	return out
}

func checkIDsUnique(t *testing.T, events []schema.Event) {
	t.Helper()
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		if seen[e.ID] {
			t.Fatalf("duplicate event id %s in one batch", e.ID)
		}
		seen[e.ID] = true
	}
}
