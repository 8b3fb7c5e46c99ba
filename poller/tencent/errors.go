package tencent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Kind says how a caller should react to an error from the client.
type Kind int

// The kinds, after the classes of the fact sheet's error tables.
const (
	// KindTransient: try again later (server hiccup, timeout, HTTP ≠ 200,
	// connection error, unreadable response). The zero value.
	KindTransient Kind = iota
	// KindRateLimited: Tencent throttled the app; the client already
	// slowed down, try again later.
	KindRateLimited
	// KindAuth: the usersig was rejected. The client regenerates it and
	// retries once by itself, so callers normally see KindFatalConfig
	// instead.
	KindAuth
	// KindGroupGone: the group does not exist (10010, 10015). Stop polling
	// it and report it dismissed.
	KindGroupGone
	// KindFatalConfig: the configuration is wrong (SDKAppID, key, region,
	// admin identifier, plan, IP allow-list). Retrying cannot help; alert
	// an operator.
	KindFatalConfig
	// KindBadRequest: the request was rejected as malformed, or the code is
	// unknown. Not retried; alert.
	KindBadRequest
)

// String returns the kind's name as used in logs.
func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindRateLimited:
		return "rate_limited"
	case KindAuth:
		return "auth"
	case KindGroupGone:
		return "group_gone"
	case KindFatalConfig:
		return "fatal_config"
	case KindBadRequest:
		return "bad_request"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// APIError is a call Tencent answered with a failure: an HTTP status other
// than 200, an ErrorCode other than 0, or a response that could not be
// understood. It never contains the usersig.
type APIError struct {
	// Command is the API command, e.g. "get_members".
	Command string
	// HTTPStatus is the response's status code.
	HTTPStatus int
	// Code is Tencent's ErrorCode; 0 for HTTP and invalid-response errors.
	Code int
	// Info is Tencent's ErrorInfo, or what was wrong with the response.
	Info string
	Kind Kind
}

// Error describes the failure and, for configuration and auth codes, the
// likely cause.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Command)
	switch {
	case e.HTTPStatus != 0 && e.HTTPStatus != 200:
		fmt.Fprintf(&b, ": http status %d", e.HTTPStatus)
	case e.Code != 0:
		fmt.Fprintf(&b, ": error %d", e.Code)
	default:
		b.WriteString(": invalid response")
	}
	h := ""
	if e.Code != 0 {
		h = hints[e.Code]
	}
	switch {
	case h != "" && e.Info != "" && strings.Contains(strings.ToLower(h), strings.ToLower(strings.TrimSpace(e.Info))):
		b.WriteString(": " + h) // the hint says it all, and more
	case h != "" && e.Info != "":
		b.WriteString(": " + e.Info + " (" + h + ")")
	case h != "":
		b.WriteString(": " + h)
	case e.Info != "":
		b.WriteString(": " + e.Info)
	}
	return b.String()
}

// KindOf returns the kind of the first *APIError in err's chain.
// Context errors, transport errors and anything unknown are
// KindTransient; a nil error is KindTransient too, so check err first.
func KindOf(err error) Kind {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return KindTransient
}

// codeKinds classifies Tencent's ErrorCodes; see the fact sheet, section 3.
// Anything absent is KindBadRequest: an unknown failure must not be retried
// in a tight loop.
var codeKinds = map[int]Kind{
	10002: KindTransient, 60008: KindTransient, 60013: KindTransient, 60014: KindTransient,

	10006: KindRateLimited, 60007: KindRateLimited, 60011: KindRateLimited,
	60018: KindRateLimited, 60019: KindRateLimited,
	// 70050 is an auth failure that also trips a one-minute lockout; the
	// client invalidates the usersig and cools down, so it is retried as a
	// rate limit.
	70050: KindRateLimited,

	60004: KindAuth, 60005: KindAuth, 70001: KindAuth, 70003: KindAuth,
	70009: KindAuth, 70013: KindAuth, 70014: KindAuth,

	10010: KindGroupGone, 10015: KindGroupGone,

	10003: KindFatalConfig, 10026: KindFatalConfig, 10059: KindFatalConfig,
	60006: KindFatalConfig, 60009: KindFatalConfig, 60010: KindFatalConfig,
	60016: KindFatalConfig, 60017: KindFatalConfig, 60020: KindFatalConfig,
	60021: KindFatalConfig, 70016: KindFatalConfig, 70020: KindFatalConfig,
	70051: KindFatalConfig, 70107: KindFatalConfig,

	10001: KindBadRequest, 10004: KindBadRequest, 10007: KindBadRequest,
	10018: KindBadRequest, 60002: KindBadRequest, 60003: KindBadRequest,
	60012: KindBadRequest, 60015: KindBadRequest,
}

// hints name the likely cause of codes an operator has to act on.
var hints = map[int]string{
	10003: "wrong command in the request URL",
	10007: "no permission: tencent.identifier is not an app admin, or the group is not an AVChatRoom",
	10010: "the group was dismissed",
	10015: "no such group in this app",
	10026: "this command is disabled for the sdkappid",
	10059: "the plan does not include this feature: an Ultimate/Enterprise plan is needed",
	60004: "usersig or identifier rejected: check tencent.identifier and the secret key",
	60005: "usersig or identifier rejected: check tencent.identifier and the secret key",
	60006: "sdkappid invalid: check tencent.sdkappid",
	60009: "bad request URL: check tencent.endpoint",
	60010: "tencent.identifier is not an app admin",
	60016: "the sdkappid is disabled",
	60017: "requests are disabled for this app",
	60020: "the paid plan expired or is suspended",
	60021: "this host's IP is not on the app's REST API IP allow-list",
	70001: "usersig expired: check the host clock (NTP)",
	70003: "usersig could not be parsed: check the configured usersig",
	70009: "usersig verification failed: the secret key is probably wrong",
	70013: "the identifier inside the usersig differs from tencent.identifier",
	70014: "the sdkappid inside the usersig differs from tencent.sdkappid",
	70016: "sdkappid/key unknown in this region's data center: check tencent.region",
	70020: "sdkappid/key unknown in this region's data center: check tencent.region",
	70050: "usersig verification failed too often: locked out for a minute, check the secret key",
	70051: "tencent.identifier is blacklisted",
	70107: "tencent.identifier is not an imported IM account",
}

// classify returns the kind of a response with the given ErrorCode.
func classify(code int) Kind {
	if k, ok := codeKinds[code]; ok {
		return k
	}
	return KindBadRequest
}

// redact rewrites err so that the usersig cannot leak through it: net/http's
// *url.Error carries the request URL, query string included.
func redact(err error, sig string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// Keep the chain (timeouts, net.OpError) but not the URL.
		err = &url.Error{Op: ue.Op, URL: redactURL(ue.URL, sig), Err: ue.Err}
	}
	if msg, clean := err.Error(), scrub(err.Error(), sig); clean != msg {
		return errors.New(clean) // the chain itself echoed the usersig
	}
	return err
}

// sigParam matches a usersig query parameter's value, also percent-encoded
// as a whole (a URL quoted inside another).
var sigParam = regexp.MustCompile(`(?i)(usersig(?:=|%3D))[^&"'\s<>]*`)

// scrub replaces the usersig in s, raw or URL-escaped (a server or proxy
// may echo the request URL in either form), and any usersig= parameter.
func scrub(s, sig string) string {
	if sig != "" {
		for _, form := range [...]string{sig, url.QueryEscape(sig), url.PathEscape(sig)} {
			s = strings.ReplaceAll(s, form, "REDACTED")
		}
	}
	return sigParam.ReplaceAllString(s, "${1}REDACTED")
}

func redactURL(raw, sig string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return scrub(raw, sig)
	}
	if q := u.Query(); q.Has("usersig") {
		q.Set("usersig", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return scrub(u.String(), sig)
}

// isContextErr reports whether err is the caller's context ending.
func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
