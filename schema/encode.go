package schema

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e's structured-mode CloudEvent JSON (the bytes
// MarshalJSON returns) to dst and returns the extended buffer. It writes
// the fields by hand, in the order and with the escaping encoding/json
// gives them (the reflection encoding this replaced is kept in the tests
// as an oracle), so a batch can be encoded into one reused buffer.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst, _ = e.AppendJSONData(dst)
	return dst
}

// AppendJSONData is AppendJSON that also reports where e's data object
// starts in the result: out[data:len(out)-1] is the data object alone,
// byte for byte what MarshalData returns (the binary-mode message value),
// so one encoding serves both modes.
func (e *Event) AppendJSONData(dst []byte) (out []byte, data int) {
	dst = append(dst, `{"specversion":"`+SpecVersion+`","id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, e.Source)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	if e.Subject != "" {
		dst = append(dst, `,"subject":`...)
		dst = appendString(dst, e.Subject)
	}
	dst = append(dst, `,"time":`...)
	t := len(dst)
	dst = appendTime(dst, e.Time)
	// Copied, not aliased: dst may move while data is appended.
	timeJSON := dst[t:len(dst):len(dst)]
	dst = append(dst, `,"datacontenttype":"`+DataContentType+`","partitionkey":`...)
	dst = appendString(dst, e.PartitionKey)
	dst = append(dst, `,"data":`...)
	data = len(dst)
	dst = e.appendData(dst, timeJSON)
	return append(dst, '}'), data
}

// AppendData appends the JSON of e's data object alone (what MarshalData
// returns) to dst. Member events carry the member fields, group events
// members_left.
func (e *Event) AppendData(dst []byte) []byte { return e.appendData(dst, nil) }

// appendData is AppendData; timeJSON, when not nil, is e.Time as
// appendTime wrote it, reused for observed_at when that is the same
// instant (it always is for events built by this package).
func (e *Event) appendData(dst, timeJSON []byte) []byte {
	d := &e.Data
	dst = append(dst, `{"sdkappid":`...)
	dst = strconv.AppendUint(dst, d.SDKAppID, 10)
	dst = append(dst, `,"group_id":`...)
	dst = appendString(dst, d.GroupID)
	member := e.IsMemberEvent()
	if member {
		dst = append(dst, `,"member_account":`...)
		dst = appendString(dst, d.MemberAccount)
		dst = append(dst, `,"nick_name":`...)
		dst = appendString(dst, d.NickName)
		dst = append(dst, `,"avatar":`...)
		dst = appendString(dst, d.Avatar)
		dst = append(dst, `,"join_time":`...)
		dst = strconv.AppendInt(dst, d.JoinTime, 10)
	}
	dst = append(dst, `,"observed_at":`...)
	if timeJSON != nil && d.ObservedAt.Equal(e.Time) {
		dst = append(dst, timeJSON...)
	} else {
		dst = appendTime(dst, d.ObservedAt)
	}
	dst = append(dst, `,"previous_observed_at":`...)
	if d.PreviousObservedAt != nil {
		dst = appendTime(dst, *d.PreviousObservedAt)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, d.Reason)
	switch {
	case member && d.OnlineSeconds != nil:
		dst = append(dst, `,"online_seconds":`...)
		dst = strconv.AppendInt(dst, *d.OnlineSeconds, 10)
	case !member:
		n := 0
		if d.MembersLeft != nil {
			n = *d.MembersLeft
		}
		dst = append(dst, `,"members_left":`...)
		dst = strconv.AppendInt(dst, int64(n), 10)
	}
	return append(dst, '}')
}

// JSONSizeHint returns a buffer size that holds e's JSON (AppendJSON)
// unless its strings need escaping: the strings' lengths plus the most the
// rest can take (keys, 20-digit numbers, times with nanoseconds).
func (e *Event) JSONSizeHint() int {
	const fixed = 468
	d := &e.Data
	return fixed + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) + len(e.PartitionKey) +
		len(d.GroupID) + len(d.MemberAccount) + len(d.NickName) + len(d.Avatar) + len(d.Reason)
}

// appendTime appends t as wireTime formats it, quoted. RFC 3339 in UTC
// has nothing to escape.
func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// jsonSafe marks the ASCII bytes encoding/json copies into a string as
// they are, with its default HTML escaping: everything from space up,
// except ", \, <, > and &.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaped exactly as
// encoding/json escapes it (HTML characters included).
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

// appendString appends s as a JSON string exactly as encoding/json's
// Marshal does: \", \\, \b, \f, \n, \r, \t; other control bytes and <, >,
// & as \u00XX; invalid UTF-8 as \ufffd; U+2028 and U+2029 as \u2028 and
// \u2029; everything else as it is.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; ; {
		i += safePrefix(s[i:])
		if i >= len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// safePrefix returns the length of s's longest prefix of bytes that
// encoding/json copies as they are (jsonSafe). It tests eight bytes at a
// time: the strings of an event are mostly plain ASCII.
func safePrefix(s string) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		// Combined by the compiler into one load.
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte below 0x20 or from 0x80 up, or equal to one of "\<>&:
		// the classic "has a byte less than n" and "has a zero byte"
		// tests, which are exact about whether any byte matches.
		special := (x-0x20*ones)&^x | x |
			zeroByte(x^('"'*ones)) | zeroByte(x^('\\'*ones)) |
			zeroByte(x^('<'*ones)) | zeroByte(x^('>'*ones)) | zeroByte(x^('&'*ones))
		if special&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if b := s[i]; b >= utf8.RuneSelf || !jsonSafe[b] {
			break
		}
	}
	return i
}

// zeroByte has the high bit of some byte set if any byte of x is zero
// (and only then: the bits above the first zero byte may be wrong, which
// an any-of test does not mind).
func zeroByte(x uint64) uint64 {
	return (x - 0x0101010101010101) &^ x
}
