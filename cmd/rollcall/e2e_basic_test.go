package main

import (
	"slices"
	"testing"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

// TestRunOnceBaselineThenChanges walks one group through a baseline, a
// join, a leave and a restart with nothing changed.
func TestRunOnceBaselineThenChanges(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("@TGS#room", member("alice", 1795600000), member("bob", 1795600100))
	e := newEnv(t, api, []string{"@TGS#room"}, "")

	e.mustOnce()
	if got, want := summary(e.events()), []string{"member.joined/baseline/alice", "member.joined/baseline/bob"}; !slices.Equal(got, want) {
		t.Fatalf("baseline events = %v, want %v", got, want)
	}

	api.Leave("@TGS#room", "alice")
	api.Join("@TGS#room", member("carol", 1795600200))
	e.mustOnce()
	got := summary(e.events()[2:])
	if want := []string{"member.left/left/alice", "member.joined/joined/carol"}; !slices.Equal(got, want) {
		t.Fatalf("change events = %v, want %v", got, want)
	}

	// A restart over the same state and an unchanged group emits nothing.
	e.mustOnce()
	if n := len(e.events()); n != 4 {
		t.Fatalf("unchanged group emitted %d new events", n-4)
	}
}
