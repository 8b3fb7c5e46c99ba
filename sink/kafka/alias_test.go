package kafka

import "github.com/segmentio/kafka-go"

type kafkaMessage = kafka.Message
