package nats_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/groupid/groupidtest"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
)

func TestGroupToken(t *testing.T) {
	for _, tt := range groupidtest.Tokens {
		t.Run(tt.ID, func(t *testing.T) {
			if got := natssink.GroupToken(tt.ID); got != tt.Token {
				t.Errorf("GroupToken(%q) = %q, want %q", tt.ID, got, tt.Token)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	m := schema.Member{Account: "alice", JoinTime: 1795600000}
	tests := []struct {
		name   string
		prefix string
		e      schema.Event
		want   string
	}{
		{"joined", "rollcall", schema.MemberJoined(1400000000, "@TGS#aRoom", m, schema.ReasonJoined, t0, nil),
			"rollcall.1400000000.%40TGS%23aRoom.joined"},
		{"left", "rollcall", schema.MemberLeft(1400000000, "room", m, schema.ReasonLeft, t0, nil, t0),
			"rollcall.1400000000.room.left"},
		{"dismissed", "acme.prod", schema.GroupDismissed(1400000000, "room", t0, nil, 0),
			"acme.prod.1400000000.room.dismissed"},
		{"wildcards in id", "rollcall", schema.MemberJoined(1, "a.*.>", m, schema.ReasonJoined, t0, nil),
			"rollcall.1.a%2E%2A%2E%3E.joined"},
		{"unknown type stays one token", "rollcall", schema.Event{Type: "x.y z", Data: schema.Data{SDKAppID: 7, GroupID: "g"}},
			"rollcall.7.g.y%20z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := natssink.Subject(tt.prefix, tt.e)
			if got != tt.want {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
			if n := strings.Count(got, "."); n != strings.Count(tt.prefix, ".")+3 {
				t.Errorf("subject %q has %d dots", got, n)
			}
		})
	}
}

var tokenChars = regexp.MustCompile(`^[A-Za-z0-9_%-]*$`)

func FuzzGroupToken(f *testing.F) {
	for _, s := range []string{"", "@TGS#aRoom", "a.b.*.>", "50%", "直播间", "\x00\xff", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tok := natssink.GroupToken(id)
		if !tokenChars.MatchString(tok) {
			t.Fatalf("GroupToken(%q) = %q has characters outside [A-Za-z0-9_%%-]", id, tok)
		}
		back, err := url.PathUnescape(tok)
		if err != nil {
			t.Fatalf("GroupToken(%q) = %q does not decode: %v", id, tok, err)
		}
		if back != id {
			t.Fatalf("GroupToken(%q) = %q decodes to %q", id, tok, back)
		}
	})
}

func TestValidate(t *testing.T) {
	ok := natssink.Options{URLs: []string{"nats://127.0.0.1:4222"}}
	tests := []struct {
		name    string
		mod     func(*natssink.Options)
		wantErr string // prefix of a line of the error; "" for valid
	}{
		{"defaults", func(*natssink.Options) {}, ""},
		{"bare host:port", func(o *natssink.Options) { o.URLs = []string{"n1:4222", "tls://n2:4222"} }, ""},
		{"jetstream", func(o *natssink.Options) { o.JetStream = true; o.Stream.Name = "EVENTS_1" }, ""},
		{"no url", func(o *natssink.Options) { o.URLs = nil }, "url: "},
		{"bad scheme", func(o *natssink.Options) { o.URLs = []string{"http://x:1"} }, "url[0]: "},
		{"second url bad", func(o *natssink.Options) { o.URLs = []string{"nats://a:1", "nats://a:x"} }, "url[1]: "},
		{"comma list", func(o *natssink.Options) { o.URLs = []string{"nats://a:1,nats://b:1"} }, "url[0]: "},
		{"prefix wildcard", func(o *natssink.Options) { o.SubjectPrefix = "rollcall.*" }, "subject_prefix: "},
		{"prefix empty token", func(o *natssink.Options) { o.SubjectPrefix = "a..b" }, "subject_prefix: "},
		{"prefix trailing dot", func(o *natssink.Options) { o.SubjectPrefix = "a." }, "subject_prefix: "},
		{"prefix space", func(o *natssink.Options) { o.SubjectPrefix = "a b" }, "subject_prefix: "},
		{"prefix gt", func(o *natssink.Options) { o.SubjectPrefix = ">" }, "subject_prefix: "},
		{"stream dot", func(o *natssink.Options) { o.JetStream = true; o.Stream.Name = "a.b" }, "stream.name: "},
		{"two auth methods", func(o *natssink.Options) { o.Token = "t"; o.CredsFile = "/c" }, "creds_file: set one way to authenticate, not creds_file and token"},
		{"password alone", func(o *natssink.Options) { o.Password = "p" }, "user: "},
		{"user alone", func(o *natssink.Options) { o.User = "u" }, "password: "},
		{"cert without key", func(o *natssink.Options) { o.TLS = &natssink.TLSOptions{Cert: "c"} }, "tls: "},
		{"negative timeout", func(o *natssink.Options) { o.PublishTimeout = -1 }, "publish_timeout: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			err := natssink.Validate(o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate passed, want an error starting %q", tt.wantErr)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				found = found || strings.HasPrefix(line, tt.wantErr)
			}
			if !found {
				t.Errorf("Validate = %q, want a line starting %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateDoesNotEchoURLSecrets(t *testing.T) {
	for _, u := range []string{"nats://user:s3cr3t@host:bad", "http://user:s3cr3t@host:4222", "nats://user:s3cr3t@h:1,nats://b:1"} {
		err := natssink.Validate(natssink.Options{URLs: []string{u}})
		if err == nil {
			t.Fatalf("Validate(%q) passed", u)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error %q contains the password", err)
		}
	}
}
