package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff/natsstore"
)

func ExampleKey() {
	fmt.Println(natsstore.Key(1400000000, "@TGS#a.room/1"))
	fmt.Println(natsstore.ParseKey("1400000000.81a4ekp3c4n74rrfdknj2"))
	// Output:
	// 1400000000.81a4ekp3c4n74rrfdknj2
	// 1400000000 @TGS#a.room/1 true
}

// Opening the bucket at start: an outage is retried, anything else is a
// configuration error.
func ExampleOpen() {
	cfg := natsstore.Config{URL: []string{"nats://127.0.0.1:1"}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Println("config:", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := natsstore.Open(ctx, cfg, zap.NewNop())
	switch {
	case errors.Is(err, natsstore.ErrUnreachable):
		fmt.Println("unreachable: not ready, retry later")
	case err != nil:
		fmt.Println("fatal:", err)
	default:
		defer b.Close()
		_ = b.App(1400000000) // a diff.Store
	}
	// Output: unreachable: not ready, retry later
}
