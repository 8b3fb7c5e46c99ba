package groupid_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/groupid"
	"github.com/rollcall-dev/rollcall/schema/groupid/groupidtest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		id      string
		wantErr error
		wantMsg string
	}{
		{"@TGS#aRoom", nil, ""},
		{"room-1", nil, ""},
		{" padded ", nil, ""},
		{"直播", nil, ""},
		{"~!\"#$%&'()*+,-./:;<=>?[\\]^_`{|}", nil, ""},
		{strings.Repeat("x", groupid.MaxLen), nil, ""},
		{"", groupid.ErrEmpty, "empty group id"},
		{" \t ", groupid.ErrEmpty, "empty group id"},
		{"a\x00b", groupid.ErrControl, "group id contains a control character"},
		{"a\rb", groupid.ErrControl, "group id contains a control character"},
		{"a\n", groupid.ErrControl, "group id contains a control character"},
		{"a\tb", groupid.ErrControl, "group id contains a control character"},
		{"a\x1b[0m", groupid.ErrControl, "group id contains a control character"},
		{"del\x7f", groupid.ErrControl, "group id contains a control character"},
		{strings.Repeat("x", groupid.MaxLen+1), groupid.ErrTooLong, "group id is 49 bytes, longer than Tencent's limit of 48"},
		{strings.Repeat("x", 61), groupid.ErrTooLong, "group id is 61 bytes, longer than Tencent's limit of 48"},
		// 16 three-byte runes: 48 bytes pass, 17 do not.
		{strings.Repeat("直", 16), nil, ""},
		{strings.Repeat("直", 17), groupid.ErrTooLong, "group id is 51 bytes, longer than Tencent's limit of 48"},
		{"\xff", groupid.ErrNotUTF8, "group id is not valid UTF-8"},
		{"ok\xe7\x9b", groupid.ErrNotUTF8, "group id is not valid UTF-8"},
		// A control byte in a long id is reported as such: it is the
		// more specific mistake.
		{strings.Repeat("x", 60) + "\n", groupid.ErrControl, "group id contains a control character"},
	}
	for _, tt := range tests {
		err := groupid.Validate(tt.id)
		if tt.wantErr == nil {
			if err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tt.id, err)
			}
			continue
		}
		if !errors.Is(err, tt.wantErr) || err.Error() != tt.wantMsg {
			t.Errorf("Validate(%q) = %v, want %q (errors.Is %v)", tt.id, err, tt.wantMsg, tt.wantErr)
		}
	}
}

func TestPathSegment(t *testing.T) {
	// The golden event files pin the source of a plain id; these pin
	// escaping, which the source has always done with url.PathEscape.
	tests := []struct{ id, want string }{
		{"room-1", "room-1"},
		{"@TGS#a/b c", "@TGS%23a%2Fb%20c"},
		{"50%", "50%25"},
		{"a?b;c", "a%3Fb%3Bc"},
		{"..", ".."},
		{"直播", "%E7%9B%B4%E6%92%AD"},
	}
	for _, tt := range tests {
		got := groupid.PathSegment(tt.id)
		if got != tt.want {
			t.Errorf("PathSegment(%q) = %q, want %q", tt.id, got, tt.want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != tt.id {
			t.Errorf("PathUnescape(%q) = %q, %v; want %q", got, back, err, tt.id)
		}
	}
}

func TestToken(t *testing.T) {
	for _, tt := range groupidtest.Tokens {
		got := groupid.Token(tt.ID)
		if got != tt.Token {
			t.Errorf("Token(%q) = %q, want %q", tt.ID, got, tt.Token)
		}
		if back, err := groupid.ParseToken(got); err != nil || back != tt.ID {
			t.Errorf("ParseToken(%q) = %q, %v; want %q", got, back, err, tt.ID)
		}
	}
}

func TestParseTokenRejectsWhatTokenNeverProduces(t *testing.T) {
	for _, tok := range []string{"a.b", "a%2eb", "%41", "a b", "%", "%4", "%zz", "*", ">", "a%2Fb/c"} {
		if id, err := groupid.ParseToken(tok); err == nil {
			t.Errorf("ParseToken(%q) = %q, want an error", tok, id)
		}
	}
}

func TestFileStem(t *testing.T) {
	// Names of existing state directories: they must never change.
	tests := []struct{ id, want string }{
		{"g", "cs"},
		{"room-1", "e9nmur9d64"},
		{"@TGS#aRoom", "81a4ekp3c596urrd"},
		{"", ""},
	}
	for _, tt := range tests {
		got := groupid.FileStem(tt.id)
		if got != tt.want {
			t.Errorf("FileStem(%q) = %q, want %q", tt.id, got, tt.want)
		}
		if tt.id == "" {
			continue
		}
		if back, ok := groupid.ParseFileStem(got); !ok || back != tt.id {
			t.Errorf("ParseFileStem(%q) = %q, %v; want %q", got, back, ok, tt.id)
		}
	}
}

func TestParseFileStemRejectsWhatFileStemNeverProduces(t *testing.T) {
	for _, stem := range []string{"", "CS", "cs==", "ct", "c", "cw", "..", "cs.json", "x y"} {
		if id, ok := groupid.ParseFileStem(stem); ok {
			t.Errorf("ParseFileStem(%q) = %q, want !ok", stem, id)
		}
	}
}

func TestFileName(t *testing.T) {
	if name, err := groupid.FileName("g", ".json"); err != nil || name != "cs.json" {
		t.Errorf(`FileName("g", ".json") = %q, %v`, name, err)
	}
	if _, err := groupid.FileName("", ".json"); !errors.Is(err, groupid.ErrEmpty) {
		t.Errorf(`FileName("") = %v, want ErrEmpty`, err)
	}
	// The limit is on the whole name, suffix included: 155 bytes make a
	// 248-byte stem, so ".outbox" (7) fits and ".outbox1" does not.
	id := strings.Repeat("x", 155)
	if name, err := groupid.FileName(id, ".outbox"); err != nil || len(name) != groupid.MaxFileNameLen {
		t.Errorf("FileName(155 bytes, .outbox) = %d bytes, %v; want 255, nil", len(name), err)
	}
	_, err := groupid.FileName(id, ".outbox1")
	if want := "group id of 155 bytes is too long for a file name"; err == nil || err.Error() != want {
		t.Errorf("FileName(155 bytes, .outbox1) = %v, want %q", err, want)
	}
}

func TestLongestValidIDFitsEveryFileName(t *testing.T) {
	// Base32 makes 8 characters of every 5 bytes, whatever the bytes, so
	// the longest valid id has the longest stem.
	stem := groupid.FileStem(strings.Repeat("~", groupid.MaxLen))
	if len(stem) != 77 {
		t.Fatalf("stem of a %d-byte id is %d bytes, want 77", groupid.MaxLen, len(stem))
	}
	if n := len(stem) + groupid.MaxFileSuffixLen; n > groupid.MaxFileNameLen {
		t.Fatalf("longest name %d bytes > %d", n, groupid.MaxFileNameLen)
	}
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_%-]+$`)

// checkEncodings asserts the properties every encoding has for any id, and
// those every valid id's encodings have.
func checkEncodings(t *testing.T, id string) {
	valid := groupid.Validate(id) == nil

	tok := groupid.Token(id)
	if back, err := groupid.ParseToken(tok); err != nil || back != id {
		t.Fatalf("ParseToken(Token(%q) = %q) = %q, %v", id, tok, back, err)
	}
	if valid && !tokenRE.MatchString(tok) {
		// Among others, no '.', '*', '>' or white space.
		t.Fatalf("Token(%q) = %q is not one NATS token of [A-Za-z0-9_%%-]", id, tok)
	}

	seg := groupid.PathSegment(id)
	if back, err := url.PathUnescape(seg); err != nil || back != id {
		t.Fatalf("PathUnescape(PathSegment(%q) = %q) = %q, %v", id, seg, back, err)
	}
	if strings.Contains(seg, "/") {
		t.Fatalf("PathSegment(%q) = %q contains '/'", id, seg)
	}

	if id == "" {
		return
	}
	stem := groupid.FileStem(id)
	if back, ok := groupid.ParseFileStem(stem); !ok || back != id {
		t.Fatalf("ParseFileStem(FileStem(%q) = %q) = %q, %v", id, stem, back, ok)
	}
	if strings.ContainsAny(stem, "/.\x00") || stem != strings.ToLower(stem) {
		t.Fatalf("FileStem(%q) = %q is not a plain lower-case name", id, stem)
	}
	if valid {
		// Events and state files carry the id as a JSON string.
		b, err := json.Marshal(id)
		var back string
		if err == nil {
			err = json.Unmarshal(b, &back)
		}
		if err != nil || back != id {
			t.Fatalf("JSON of %q = %s decodes to %q, %v", id, b, back, err)
		}
		suffix := strings.Repeat("s", groupid.MaxFileSuffixLen)
		name, err := groupid.FileName(id, suffix)
		if err != nil || len(name) > groupid.MaxFileNameLen {
			t.Fatalf("FileName(%q, %d-byte suffix) = %d bytes, %v", id, len(suffix), len(name), err)
		}
	}
}

func TestEncodingsOfSomeIDs(t *testing.T) {
	for _, id := range []string{"", "@TGS#aRoom", "a.b.*.>", " ", "直播间", "\x00\xff", "%2E", "..",
		strings.Repeat("~", groupid.MaxLen), strings.Repeat("\xff", 200)} {
		checkEncodings(t, id)
	}
}

// FuzzGroupID checks the encodings' properties on arbitrary ids; the seed
// corpus is in testdata/fuzz/FuzzGroupID.
func FuzzGroupID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		checkEncodings(t, id)
	})
}
