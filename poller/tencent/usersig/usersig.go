// Package usersig mints and verifies Tencent Cloud Chat UserSigs
// (TLSSigAPIv2), the credential every REST call carries in its query string.
//
// Generate reproduces the official Go library (tencentyun/tls-sig-api-v2-golang
// since 2024-11: zlib level 0, struct-ordered JSON) byte for byte, but takes
// the clock as an argument and rejects the inputs that library silently turns
// into unverifiable tokens (zero expiry, empty identifier, empty non-nil
// userbuf). Verify follows the official verifier's order of checks, so a fake
// server built on it fails the way Tencent does.
//
// Signer caches one usersig and mints a new one well before it expires; Static
// wraps a usersig taken verbatim from configuration. Both implement Source,
// which is what the REST client consumes.
package usersig

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors returned (wrapped) by Decode and Verify.
var (
	// ErrMalformed: the string is not a decodable usersig.
	ErrMalformed = errors.New("usersig: malformed")
	// ErrExpired: now is past TLS.time + TLS.expire.
	ErrExpired = errors.New("usersig: expired")
	// ErrBadSignature: the HMAC does not match, usually another key.
	ErrBadSignature = errors.New("usersig: signature mismatch")
	// ErrIdentifierMismatch: the usersig was minted for another identifier.
	ErrIdentifierMismatch = errors.New("usersig: identifier mismatch")
	// ErrSDKAppIDMismatch: the usersig was minted for another SDKAppID.
	ErrSDKAppIDMismatch = errors.New("usersig: sdkappid mismatch")
)

// MaxIdentifierLen is the longest UserID Tencent accepts, in bytes.
const MaxIdentifierLen = 32

// version is the TLS.ver every v2 usersig carries.
const version = "2.0"

// maxInflated bounds what Decode inflates: a real usersig document is a few
// hundred bytes, so anything larger is garbage or a zip bomb.
const maxInflated = 64 << 10

// Doc is the decoded content of a usersig. UserBuf is nil when the usersig
// carries none.
//
// Field order and tags match the official Go library's document, which is
// what makes Generate's output byte-identical to it.
type Doc struct {
	Ver        string `json:"TLS.ver,omitempty"`
	Identifier string `json:"TLS.identifier,omitempty"`
	SDKAppID   uint64 `json:"TLS.sdkappid,omitempty"`
	Expire     int64  `json:"TLS.expire,omitempty"`
	Time       int64  `json:"TLS.time,omitempty"`
	UserBuf    []byte `json:"TLS.userbuf,omitempty"`
	Sig        string `json:"TLS.sig,omitempty"`
}

// ValidateIdentifier reports whether id is usable as a UserID: 1 to 32 bytes
// of printable ASCII without spaces. The official library would sign an
// empty identifier into a token no server accepts, and a stray space or
// newline from a config file is far more likely a mistake than a real UserID.
func ValidateIdentifier(id string) error {
	if id == "" {
		return errors.New("identifier is empty")
	}
	if len(id) > MaxIdentifierLen {
		return fmt.Errorf("identifier is %d bytes, max %d", len(id), MaxIdentifierLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("identifier has a non-printable or space byte 0x%02x at offset %d", c, i)
		}
	}
	return nil
}

// Generate mints a usersig for identifier. expire is the lifetime in seconds
// (> 0), now becomes TLS.time, and userbuf is optional (nil means none; an
// empty non-nil userbuf is rejected because the official format cannot
// represent it). The error never contains the key.
func Generate(sdkappid uint64, identifier, key string, expire int64, now time.Time, userbuf []byte) (string, error) {
	switch {
	case sdkappid == 0:
		return "", errors.New("usersig: sdkappid is 0")
	case key == "":
		return "", errors.New("usersig: key is empty")
	case expire <= 0:
		return "", fmt.Errorf("usersig: expire %d: must be > 0 seconds", expire)
	case userbuf != nil && len(userbuf) == 0:
		return "", errors.New("usersig: userbuf is empty but not nil: pass nil for none")
	}
	if err := ValidateIdentifier(identifier); err != nil {
		return "", fmt.Errorf("usersig: %w", err)
	}
	t := now.Unix()
	doc := Doc{
		Ver: version, Identifier: identifier, SDKAppID: sdkappid,
		Expire: expire, Time: t, UserBuf: userbuf,
		Sig: sign(key, sdkappid, identifier, t, expire, userbuf),
	}
	var js bytes.Buffer
	// json.Encoder, not Marshal: the official library's trailing newline
	// and HTML escaping are part of the byte-exact output.
	if err := json.NewEncoder(&js).Encode(doc); err != nil {
		return "", fmt.Errorf("usersig: encode: %w", err)
	}
	var z bytes.Buffer
	// Level 0 as the official library does since 2024-11: a usersig is tiny
	// and stored blocks keep it reproducible.
	zw, err := zlib.NewWriterLevel(&z, zlib.NoCompression)
	if err != nil {
		return "", fmt.Errorf("usersig: compress: %w", err)
	}
	if _, err := zw.Write(js.Bytes()); err != nil {
		return "", fmt.Errorf("usersig: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("usersig: compress: %w", err)
	}
	return urlEncode(z.Bytes()), nil
}

// HMACInput is the exact string TLSSigAPIv2 signs. Exported for tests and
// tooling that compare against the official libraries.
func HMACInput(sdkappid uint64, identifier string, t, expire int64, userbuf []byte) string {
	var b strings.Builder
	b.WriteString("TLS.identifier:" + identifier + "\n")
	b.WriteString("TLS.sdkappid:" + strconv.FormatUint(sdkappid, 10) + "\n")
	// time before expire here, unlike the JSON document.
	b.WriteString("TLS.time:" + strconv.FormatInt(t, 10) + "\n")
	b.WriteString("TLS.expire:" + strconv.FormatInt(expire, 10) + "\n")
	if userbuf != nil {
		b.WriteString("TLS.userbuf:" + base64.StdEncoding.EncodeToString(userbuf) + "\n")
	}
	return b.String()
}

func sign(key string, sdkappid uint64, identifier string, t, expire int64, userbuf []byte) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(HMACInput(sdkappid, identifier, t, expire, userbuf)))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// urlEncode is Tencent's URL-safe base64: standard alphabet with padding,
// then + → *, / → -, = → _.
func urlEncode(b []byte) string {
	return strings.NewReplacer("+", "*", "/", "-", "=", "_").Replace(base64.StdEncoding.EncodeToString(b))
}

func urlDecode(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(s))
}

// Decode reverses Generate's encoding: Tencent's URL-safe base64, zlib, JSON.
// It does not check the signature or expiry (see Verify). Every failure
// wraps ErrMalformed.
func Decode(usersig string) (*Doc, error) {
	raw, err := urlDecode(usersig)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", ErrMalformed, err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", ErrMalformed, err)
	}
	if len(js) > maxInflated {
		return nil, fmt.Errorf("%w: document larger than %d bytes", ErrMalformed, maxInflated)
	}
	var doc Doc
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("%w: json: %v", ErrMalformed, err)
	}
	if doc.Sig == "" {
		return nil, fmt.Errorf("%w: no TLS.sig", ErrMalformed)
	}
	return &doc, nil
}

// Verify checks usersig the way the official verifier does, in its order:
// sdkappid, identifier, expiry (expired when now > TLS.time + TLS.expire),
// then the HMAC over the fields, including TLS.userbuf when present. It
// returns nil or an error wrapping one of the sentinels; the key never
// appears in it.
func Verify(usersig, key string, sdkappid uint64, identifier string, now time.Time) error {
	doc, err := Decode(usersig)
	if err != nil {
		return err
	}
	if doc.SDKAppID != sdkappid {
		return fmt.Errorf("%w: usersig has %d, want %d", ErrSDKAppIDMismatch, doc.SDKAppID, sdkappid)
	}
	if doc.Identifier != identifier {
		return fmt.Errorf("%w: usersig has %q, want %q", ErrIdentifierMismatch, doc.Identifier, identifier)
	}
	if now.Unix() > doc.Time+doc.Expire {
		return fmt.Errorf("%w: at %d (time %d + expire %d)", ErrExpired, doc.Time+doc.Expire, doc.Time, doc.Expire)
	}
	want := sign(key, doc.SDKAppID, doc.Identifier, doc.Time, doc.Expire, doc.UserBuf)
	if !hmac.Equal([]byte(want), []byte(doc.Sig)) {
		return ErrBadSignature
	}
	return nil
}
