package kafka_test

import (
	"context"
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/sink/kafka"
)

// A production configuration: binary mode, zstd, SCRAM over TLS. New does
// no network I/O; Check is what `rollcall check` runs.
func ExampleNew() {
	s, err := kafka.New(context.Background(), kafka.Options{
		Brokers:     []string{"kafka-0.kafka:9093", "kafka-1.kafka:9093"},
		Topic:       "rollcall.members",
		Mode:        kafka.ModeBinary,
		Compression: "zstd",
		TLS:         &kafka.TLSOptions{},
		SASL: &kafka.SASLOptions{
			Mechanism: kafka.MechanismSCRAMSHA512,
			Username:  "rollcall",
			Password:  "resolved-from-password_file",
		},
		WriteTimeout: 5 * time.Second,
		Metrics:      kafka.NewMetrics(prometheus.NewRegistry()),
		Logger:       zap.NewNop(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())
	_ = s.Name() // "kafka:rollcall.members"
	// Output:
}
