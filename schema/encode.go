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
	dst = appendTime(dst, e.Time)
	dst = append(dst, `,"datacontenttype":"`+DataContentType+`","partitionkey":`...)
	dst = appendString(dst, e.PartitionKey)
	dst = append(dst, `,"data":`...)
	data = len(dst)
	dst = e.AppendData(dst)
	return append(dst, '}'), data
}

// AppendData appends the JSON of e's data object alone (what MarshalData
// returns) to dst. Member events carry the member fields, group events
// members_left.
func (e *Event) AppendData(dst []byte) []byte {
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
	dst = appendTime(dst, d.ObservedAt)
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

// encodedSizeHint is a buffer size that holds e's JSON unless its strings
// need escaping: the fixed part (keys, numbers, two to three times) stays
// under 512 bytes.
func (e *Event) encodedSizeHint() int {
	d := &e.Data
	return 512 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) + len(e.PartitionKey) +
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

// appendString appends s as a JSON string exactly as encoding/json's
// Marshal does: \", \\, \b, \f, \n, \r, \t; other control bytes and <, >,
// & as \u00XX; invalid UTF-8 as \ufffd; U+2028 and U+2029 as \u2028 and
// \u2029; everything else as it is.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
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
