package kafka

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"
)

func TestValidate(t *testing.T) {
	valid := func() Options {
		return Options{Brokers: []string{"kafka-0:9092", "[::1]:9093"}, Topic: "rollcall.events_v1-x"}
	}
	tests := []struct {
		name   string
		mutate func(*Options)
		want   []string // substrings; nil means valid
	}{
		{"minimal", func(*Options) {}, nil},
		{"everything", func(o *Options) {
			o.Mode, o.Compression, o.BatchSize = ModeBinary, "zstd", 500
			o.BatchTimeout, o.WriteTimeout = time.Millisecond, time.Minute
			o.TLS = &TLSOptions{CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}
			o.SASL = &SASLOptions{Mechanism: MechanismSCRAMSHA512, Username: "u", Password: "p"}
			o.CreateTopic = &CreateTopicOptions{Partitions: 6, ReplicationFactor: 3}
		}, nil},
		{"no brokers", func(o *Options) { o.Brokers = nil }, []string{"brokers: at least one broker address is required"}},
		{"bad broker", func(o *Options) { o.Brokers = []string{"kafka-0:9092", "kafka-1"} }, []string{`brokers[1]: must be host:port, got "kafka-1"`}},
		{"no topic", func(o *Options) { o.Topic = "" }, []string{"topic: required"}},
		{"bad topic", func(o *Options) { o.Topic = "a/b" }, []string{"topic: \"a/b\": only ASCII"}},
		{"dot topic", func(o *Options) { o.Topic = ".." }, []string{"topic: \"..\" is not a valid topic name"}},
		{"long topic", func(o *Options) { o.Topic = strings.Repeat("t", 250) }, []string{"topic: longer than 249"}},
		{"mode", func(o *Options) { o.Mode = "Binary" }, []string{`mode: must be structured or binary, got "Binary"`}},
		{"codec", func(o *Options) { o.Compression = "x" }, []string{`compression: must be none, gzip, snappy, lz4 or zstd, got "x"`}},
		{"negatives", func(o *Options) { o.BatchSize, o.BatchTimeout, o.WriteTimeout = -1, -1, -1 },
			[]string{"batch_size: must be positive", "batch_timeout: must be positive", "write_timeout: must not be negative"}},
		{"tls pair", func(o *Options) { o.TLS = &TLSOptions{Cert: "c.pem"} }, []string{"tls: cert and key must be set together"}},
		{"sasl", func(o *Options) { o.SASL = &SASLOptions{Mechanism: "gssapi"} },
			[]string{`sasl.mechanism: must be plain, scram-sha-256 or scram-sha-512, got "gssapi"`, "sasl.username: required", "sasl.password: required"}},
		{"create_topic", func(o *Options) { o.CreateTopic = &CreateTopicOptions{Partitions: -1, ReplicationFactor: 40000} },
			[]string{"create_topic.partitions: must not be negative", "create_topic.replication: must be between 0 and 32767"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.mutate(&o)
			err := Validate(o)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			if got := len(strings.Split(err.Error(), "\n")); got != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d: %v", got, len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsInvalid(t *testing.T) {
	if _, err := New(t.Context(), Options{Topic: "t"}); err == nil || !strings.Contains(err.Error(), "brokers:") {
		t.Fatalf("New = %v, want the brokers validation error", err)
	}
	_, err := New(t.Context(), Options{Brokers: []string{"h:1"}, Topic: "t", TLS: &TLSOptions{CA: "/nonexistent/ca.pem"}})
	if err == nil || !strings.Contains(err.Error(), "tls.ca") {
		t.Fatalf("New with a missing CA file = %v, want a tls.ca error", err)
	}
}

func TestDefaults(t *testing.T) {
	o := Options{Brokers: []string{"h:1"}, Topic: "t"}.withDefaults()
	if o.Mode != ModeStructured || o.Compression != "none" || o.BatchSize != 100 ||
		o.BatchTimeout != 10*time.Millisecond || o.WriteTimeout != 10*time.Second || o.Logger == nil {
		t.Errorf("defaults not applied: %+v", o)
	}
}

func TestYAMLKeys(t *testing.T) {
	in := `
brokers: ["k:9092"]
topic: events
mode: binary
compression: lz4
batch_size: 50
batch_timeout: 5ms
write_timeout: 3s
tls: {ca: ca.pem, insecure_skip_verify: true}
sasl: {mechanism: plain, username: u, password: pw}
create_topic: {partitions: 3, replication: 1}
`
	var o Options
	dec := yaml.NewDecoder(strings.NewReader(in))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if err := Validate(o); err != nil {
		t.Fatal(err)
	}
	if o.BatchTimeout != 5*time.Millisecond || o.SASL.Password != "pw" || o.CreateTopic.Partitions != 3 || !o.TLS.InsecureSkipVerify {
		t.Errorf("decoded %+v", o)
	}
}

// TestSASLOptionsRedacted: every way a SASLOptions value commonly gets
// printed or logged leaves the password out.
func TestSASLOptionsRedacted(t *testing.T) {
	const secret = "hunter2-very-secret"
	s := SASLOptions{Mechanism: MechanismPlain, Username: "rollcall", Password: secret}
	o := Options{Brokers: []string{"h:1"}, Topic: "t", SASL: &s}

	j, _ := json.Marshal(s)
	y, _ := yaml.Marshal(s)
	yo, _ := yaml.Marshal(o)
	core, logs := observer.New(zapcore.DebugLevel)
	zap.New(core).Info("config", zap.Object("sasl", s), zap.Any("sasl_any", s), zap.Any("options", o))
	var logged strings.Builder
	for _, e := range logs.AllUntimed() {
		enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		logged.Write(buf.Bytes())
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s),
		"%v of *": fmt.Sprintf("%v", &s), "%+v options": fmt.Sprintf("%+v", *o.SASL),
		"json": string(j), "yaml": string(y), "yaml options": string(yo), "zap": logged.String(),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("%s form leaks the password: %s", name, out)
		}
		if !strings.Contains(out, "rollcall") {
			t.Errorf("%s form lost the username: %s", name, out)
		}
	}
}
