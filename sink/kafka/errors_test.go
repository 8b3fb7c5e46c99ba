package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rollcall-dev/rollcall/sink"
)

func TestPublishAfterClose(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	s := newSink(t, c, Options{Topic: "events"})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := s.Publish(context.Background(), sink.NewBatch(groupEvents("@TGS#z", 1)))
	if !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want sink.ErrClosed", err)
	}
	var perm *backoff.PermanentError
	if !errors.As(err, &perm) {
		t.Errorf("Publish after Close = %v, want it marked permanent", err)
	}
	if err := s.Healthy(context.Background()); !errors.Is(err, sink.ErrClosed) {
		t.Errorf("Healthy after Close = %v, want sink.ErrClosed", err)
	}
}

// TestMessageTooLarge: an event over the request size limit fails without
// retries, and the error is marked permanent.
func TestMessageTooLarge(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	s := newSink(t, c, Options{Topic: "events"})
	evs := groupEvents("@TGS#big", 2)
	evs[1].Data.NickName = strings.Repeat("n", batchBytes)
	err := s.Publish(context.Background(), sink.NewBatch(evs))
	var perm *backoff.PermanentError
	if err == nil || !errors.As(err, &perm) {
		t.Fatalf("Publish of an oversized event = %v, want a permanent error", err)
	}
	if !strings.Contains(err.Error(), "kafka:events") {
		t.Errorf("error %q does not name the sink", err)
	}
}
