package main

import (
	"slices"
	"strings"
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

// TestRunOnceRecognisesTheSilent30Cap: an app without the online member
// list feature gets the latest 30 members and no error. With the default
// poll.member_cap (1000), rollcall asks get_online_member_num, sees more
// online, and treats the list as capped: a member sliding out of the 30 is
// not reported as left.
func TestRunOnceRecognisesTheSilent30Cap(t *testing.T) {
	api := newAPI(t, tencenttest.Options{MemberCap: 30})
	api.AddGroup("big", members(35, "u%02d", 1795600000)...)
	e := newEnv(t, api, []string{"big"}, "")

	r := e.once()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := len(e.events()); n != 30 {
		t.Fatalf("baseline events = %d, want the 30 listed", n)
	}
	if !strings.Contains(r.stderr, "set poll.member_cap: 30") {
		t.Errorf("no warning about the 30 cap in stderr:\n%s", r.stderr)
	}

	api.Join("big", member("newcomer", 1795600100)) // pushes u05 out of the window
	e.mustOnce()
	got := summary(e.events()[30:])
	if want := []string{"member.joined/joined/newcomer"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (u05 only slid out of view)", got, want)
	}
}

// TestRunOnceConfirmsDeparturesBelowTheCap: with poll.confirm_departures, a
// member who left from below a capped list's window is reported at once
// (check_members), while one who only slid out of view is not.
func TestRunOnceConfirmsDeparturesBelowTheCap(t *testing.T) {
	api := newAPI(t, tencenttest.Options{MemberCap: 5})
	api.AddGroup("capped", members(5, "u%d", 1795600000)...)
	e := newEnv(t, api, []string{"capped"}, "  member_cap: 5\n  confirm_departures: true\n")
	e.mustOnce()

	// Two newcomers push u0 and u1 below the window; u0 also leaves.
	api.Join("capped", member("n1", 1795600100))
	api.Join("capped", member("n2", 1795600101))
	api.Leave("capped", "u0")
	e.mustOnce()
	got := summary(e.events()[5:])
	want := []string{"member.left/left/u0", "member.joined/joined/n1", "member.joined/joined/n2"}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (u1 only slid out of view)", got, want)
	}
	if api.Calls("check_members") == 0 {
		t.Fatal("check_members never called")
	}
}
