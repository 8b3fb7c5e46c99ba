package nats

import (
	"strconv"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
)

// The subject cache (Sink.subject) must give what Subject gives for every
// key part (sdkappid, group, type) and stay within maxSubjects entries
// however many groups pass through it.
func TestSubjectCacheMatchesSubjectAndIsBounded(t *testing.T) {
	s := &Sink{prefix: "rc"}
	ev := func(app uint64, group, typ string) *schema.Event {
		return &schema.Event{Type: typ, Data: schema.Data{SDKAppID: app, GroupID: group}}
	}
	for _, e := range []*schema.Event{
		ev(1, "g.1", schema.TypeMemberJoined),
		ev(1, "g.1", schema.TypeMemberLeft),   // same group, other type
		ev(2, "g.1", schema.TypeMemberJoined), // other app
		ev(1, "g.1", schema.TypeMemberJoined), // a hit
		ev(1, "@TGS#x", schema.TypeGroupDismissed),
	} {
		if got, want := s.subject(e), Subject("rc", *e); got != want {
			t.Errorf("subject(%d, %q, %s) = %q, want %q", e.Data.SDKAppID, e.Data.GroupID, e.Type, got, want)
		}
	}
	for i := range 3 * maxSubjects {
		e := ev(1, "g"+strconv.Itoa(i), schema.TypeMemberJoined)
		if got, want := s.subject(e), Subject("rc", *e); got != want {
			t.Fatalf("group %d: subject = %q, want %q", i, got, want)
		}
		if len(s.subjects) > maxSubjects {
			t.Fatalf("after %d groups the cache holds %d subjects, want at most %d", i+1, len(s.subjects), maxSubjects)
		}
	}
}
