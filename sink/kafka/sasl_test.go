package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/sink"
)

func TestSASL(t *testing.T) {
	const (
		plainPass = "plain-Secret-1f9c"
		s256Pass  = "scram256-Secret-77ab"
		s512Pass  = "scram512-Secret-03de"
		wrongPass = "wrong-Secret-9e21"
	)
	c := newCluster(t, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", plainPass),
		kfake.Superuser("SCRAM-SHA-256", "bob", s256Pass),
		kfake.Superuser("SCRAM-SHA-512", "carol", s512Pass),
		kfake.SeedTopics(1, "events"))
	secrets := []string{plainPass, s256Pass, s512Pass, wrongPass}

	for _, tc := range []struct{ mech, user, pass string }{
		{MechanismPlain, "alice", plainPass},
		{MechanismSCRAMSHA256, "bob", s256Pass},
		{MechanismSCRAMSHA512, "carol", s512Pass},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			good := newSink(t, c, Options{Topic: "events", Logger: zap.New(core),
				SASL: &SASLOptions{Mechanism: tc.mech, Username: tc.user, Password: tc.pass}})
			if err := good.Check(ctx); err != nil {
				t.Fatalf("Check with the right password: %v", err)
			}
			if err := good.Publish(ctx, sink.NewBatch(groupEvents("@TGS#sasl", 2))); err != nil {
				t.Fatalf("Publish with the right password: %v", err)
			}

			bad := newSink(t, c, Options{Topic: "events", Logger: zap.New(core), WriteTimeout: 2 * time.Second,
				SASL: &SASLOptions{Mechanism: tc.mech, Username: tc.user, Password: wrongPass}})
			var errs []error
			if err := bad.Check(ctx); err == nil {
				t.Error("Check with a wrong password succeeded")
			} else {
				errs = append(errs, err)
			}
			if err := bad.Healthy(ctx); err == nil {
				t.Error("Healthy with a wrong password succeeded")
			} else {
				errs = append(errs, err)
			}
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			defer pcancel()
			if err := bad.Publish(pctx, sink.NewBatch(groupEvents("@TGS#sasl", 2))); err == nil {
				t.Error("Publish with a wrong password succeeded")
			} else {
				errs = append(errs, err)
			}
			for _, err := range errs {
				t.Logf("wrong password: %v", err)
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error leaks a password: %v", err)
					}
				}
			}
			for _, e := range logs.AllUntimed() {
				line := e.Message
				for _, f := range e.Context {
					line += " " + f.String
					if f.Interface != nil {
						if er, ok := f.Interface.(error); ok {
							line += " " + er.Error()
						}
					}
				}
				for _, s := range secrets {
					if strings.Contains(line, s) {
						t.Errorf("log leaks a password: %s", line)
					}
				}
			}
		})
	}
}

// TestSCRAMPreparationErrorRedacted: the SCRAM library quotes the password
// when SASLprep rejects it; New must not pass that on.
func TestSCRAMPreparationErrorRedacted(t *testing.T) {
	const pass = "bell\u0007secret"
	_, err := New(context.Background(), Options{Brokers: []string{"h:1"}, Topic: "t",
		SASL: &SASLOptions{Mechanism: MechanismSCRAMSHA256, Username: "u", Password: pass}})
	if err == nil {
		t.Fatal("New accepted a password SASLprep rejects")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("error wraps the library error, which quotes the password: %v", errors.Unwrap(err))
	}
}
