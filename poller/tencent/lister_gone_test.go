package tencent_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/poller/tencent"
)

// A group discovery found gone is reported gone without a call, until it
// is unscheduled.
func TestListerMarkGone(t *testing.T) {
	api := &fakeAPI{n: 1}
	l, _ := newLister(t, api, tencent.ListerOptions{})
	l.Scheduled([]string{"a", "b"})
	l.MarkGone("b")
	for range 2 {
		_, err := l.List(context.Background(), "b")
		var pe *poller.Error
		if !errors.As(err, &pe) || pe.Kind != poller.KindGone {
			t.Fatalf("List(b) = %v, want KindGone", err)
		}
	}
	if _, err := l.List(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if _, listed := api.listed["b"]; listed || api.asked != 0 {
		t.Fatalf("the API was called about b (listed %v, get_group_info %d)", listed, api.asked)
	}
	l.Scheduled([]string{"a"}) // dismissed: unscheduled
	l.Scheduled([]string{"a", "b"})
	if _, err := l.List(context.Background(), "b"); err != nil {
		t.Fatalf("b rescheduled after its dismissal: %v, want listed afresh", err)
	}
}
