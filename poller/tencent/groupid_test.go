package tencent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// TestInvalidGroupIDIsRefusedBeforeAnyCall: every call taking a group id
// checks it with groupid.Validate and names itself in the error; nothing
// reaches the API.
func TestInvalidGroupIDIsRefusedBeforeAnyCall(t *testing.T) {
	f := newFakeAPI(t, always(200, ok("0")))
	c := newTestClient(t, f.srv.URL, nil)
	ctx := context.Background()
	calls := map[string]func(string) error{
		"list members":      func(id string) error { _, err := c.ListMembers(ctx, id); return err },
		"online member num": func(id string) error { _, err := c.OnlineMemberNum(ctx, id); return err },
		"group exists":      func(id string) error { _, err := c.GroupExists(ctx, id); return err },
		"check members":     func(id string) error { _, err := c.CheckMembers(ctx, id, []string{"alice"}); return err },
	}
	ids := map[string]error{
		"":                      groupid.ErrEmpty,
		"a\nb":                  groupid.ErrControl,
		strings.Repeat("g", 49): groupid.ErrTooLong,
	}
	for name, call := range calls {
		for id, want := range ids {
			err := call(id)
			if !errors.Is(err, want) || !strings.HasPrefix(err.Error(), name+": ") {
				t.Errorf("%s(%q) = %v, want %q wrapped as %q", name, id, err, want, name+": ...")
			}
		}
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("%d requests reached the API", len(got))
	}
	// The empty id keeps its old message.
	if _, err := c.ListMembers(ctx, ""); err == nil || err.Error() != "list members: empty group id" {
		t.Errorf("ListMembers(\"\") = %v", err)
	}
}
