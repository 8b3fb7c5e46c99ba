// Package groupid is the one place that says what a Tencent group id may
// be and how rollcall spells it wherever a plain string will not do:
//
//   - Validate: the rule an id from the outside (configuration, API
//     callers) must pass.
//   - PathSegment: the id inside the CloudEvent source,
//     /tencent-im/<sdkappid>/groups/<segment>.
//   - Token: the id as one NATS subject token.
//   - FileStem / FileName: the id as a file name of the state store.
//
// Each encoding accepts any string, valid or not, and is reversible for
// every non-empty one, so an id is never confused with another one. They are wire
// and disk formats: changing one changes event bytes, NATS subjects or
// state file names, and breaks consumers or existing state directories.
//
// The package imports only the standard library, so schema (the leaf of
// rollcall's imports) can use it.
package groupid

import (
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxLen is Tencent's limit on a group id, in bytes. Tencent's "Use
// limits" page (Chat product, "custom group ID", e.g.
// https://trtc.io/zh/document/34381) says a custom id is printable ASCII
// (0x20-0x7e), at most 48 bytes, and must not start with "@TGS#", the
// prefix of the ids Tencent assigns (which are shorter).
const MaxLen = 48

var (
	// ErrEmpty is returned for an empty id, or one of only white space
	// (a YAML slip rather than a group).
	ErrEmpty = errors.New("empty group id")
	// ErrControl is returned for an id with an ASCII control byte
	// (0x00-0x1f, 0x7f): Tencent never issues one, and it would garble
	// logs and YAML.
	ErrControl = errors.New("group id contains a control character")
	// ErrNotUTF8 is returned for an id that is not valid UTF-8: JSON
	// (events, state files) would replace the bad bytes, so the id would
	// not come back. YAML configuration cannot produce one.
	ErrNotUTF8 = errors.New("group id is not valid UTF-8")
	// ErrTooLong matches (errors.Is) the error for an id longer than
	// MaxLen; that error's text gives the id's length.
	ErrTooLong = errors.New("group id is longer than Tencent's limit")
)

type tooLongError int

func (n tooLongError) Error() string {
	return fmt.Sprintf("group id is %d bytes, longer than Tencent's limit of %d", int(n), MaxLen)
}

func (tooLongError) Is(target error) bool { return target == ErrTooLong }

// Validate reports whether id may name a group: not empty or white space
// only (ErrEmpty), no ASCII control byte (ErrControl), valid UTF-8
// (ErrNotUTF8), at most MaxLen bytes (ErrTooLong). Checks run in that
// order. Non-ASCII characters pass: Tencent's documented alphabet is
// ASCII, but rollcall has always accepted them and leaves the verdict on
// them to the API.
//
// Every id that passes has a non-empty NATS token without '.', '*', '>'
// or white space, and file names within MaxFileNameLen for any suffix of
// up to MaxFileSuffixLen bytes.
func Validate(id string) error {
	if strings.TrimSpace(id) == "" {
		return ErrEmpty
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return ErrControl
		}
	}
	if !utf8.ValidString(id) {
		return ErrNotUTF8
	}
	if len(id) > MaxLen {
		return tooLongError(len(id))
	}
	return nil
}

// PathSegment is id as one URL path segment, as in the CloudEvent source:
// url.PathEscape, so '/', '#', '%', '?', white space and non-ASCII bytes
// are %XX-escaped and url.PathUnescape gives the id back.
func PathSegment(id string) string {
	return url.PathEscape(id)
}

// Token is id as one NATS subject token: every byte outside
// [A-Za-z0-9_-] becomes %XX (upper-case hex). Dots, wildcards ('*', '>'),
// white space and the "@TGS#" prefix therefore cannot split the token or
// widen a subscription. ParseToken (or url.PathUnescape) reverses it. The
// empty id gives the empty string, which is not a valid token.
func Token(id string) string {
	n := 0
	for i := 0; i < len(id); i++ {
		if !tokenByte(id[i]) {
			n++
		}
	}
	if n == 0 {
		return id
	}
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(id)+2*n)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if tokenByte(c) {
			out = append(out, c)
			continue
		}
		out = append(out, '%', hex[c>>4], hex[c&0x0f])
	}
	return string(out)
}

// ParseToken reverses Token. It accepts only what Token produces, so each
// id has exactly one token.
func ParseToken(tok string) (string, error) {
	id, err := url.PathUnescape(tok)
	if err != nil || Token(id) != tok {
		return "", fmt.Errorf("%q is not a group token", tok)
	}
	return id, nil
}

func tokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

const (
	// MaxFileNameLen is the longest file name (in bytes) that common
	// filesystems accept: NAME_MAX of ext4, XFS, btrfs, tmpfs, APFS.
	MaxFileNameLen = 255
	// MaxFileSuffixLen is what a caller may append to FileStem (".json",
	// ".outbox", ...) and still, for every valid id, stay within
	// MaxFileNameLen. The longest stem of a valid id is 77 bytes.
	MaxFileSuffixLen = 16
)

var fileEnc = base32.HexEncoding.WithPadding(base32.NoPadding)

// FileStem is id as a file name without extension: lower-case base32
// (RFC 4648 "extended hex" alphabet, 0-9a-v, no padding). It cannot
// contain '/' or be "." or "..", and no two stems differ only in case, so
// it is collision-free on case-insensitive filesystems too. ParseFileStem
// reverses it. The empty id gives the empty string.
func FileStem(id string) string {
	return strings.ToLower(fileEnc.EncodeToString([]byte(id)))
}

// ParseFileStem reverses FileStem; ok is false for a stem FileStem does not
// produce (upper case, padding, a non-canonical last character, empty).
func ParseFileStem(stem string) (id string, ok bool) {
	if stem == "" || stem != strings.ToLower(stem) {
		return "", false
	}
	b, err := fileEnc.DecodeString(strings.ToUpper(stem))
	if err != nil || FileStem(string(b)) != stem {
		return "", false
	}
	return string(b), true
}

// FileName is FileStem(id) + suffix, or an error when id is empty or the
// name would be longer than MaxFileNameLen. It does not Validate id: a
// store may keep any id it can name (state written before the length
// limit existed still loads).
func FileName(id, suffix string) (string, error) {
	if id == "" {
		return "", ErrEmpty
	}
	name := FileStem(id) + suffix
	if len(name) > MaxFileNameLen {
		return "", fmt.Errorf("group id of %d bytes is too long for a file name", len(id))
	}
	return name, nil
}
