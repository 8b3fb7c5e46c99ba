package poller

import (
	"errors"
	"strconv"

	"go.uber.org/zap"
)

// FatalError is returned by Run (and found in RunOnce's error) when the API
// reports an error that no retry or other group can fix: a wrong secret key,
// sdkappid or region, an identifier that is not an app admin, an expired
// plan. The process must stop and an operator must fix the configuration.
type FatalError struct {
	// GroupID is the group whose poll hit the error.
	GroupID string
	// Err is the API error; its message names the likely cause.
	Err error
}

// Error names the cause.
func (e *FatalError) Error() string {
	return "the API rejected the configuration: " + e.Err.Error()
}

// Unwrap returns the API error.
func (e *FatalError) Unwrap() error { return e.Err }

// Kind says how the scheduler reacts to a failed listing. Listers map their
// own errors to it (poller/tencent does for the Tencent API), so the
// scheduler knows nothing of any API's codes.
type Kind int

// The kinds of listing failure.
const (
	// KindTransient: no snapshot this cycle (server trouble, rate limit,
	// timeout); the group is polled again next cycle. An error that is not
	// an *Error is of this kind.
	KindTransient Kind = iota
	// KindGroupFailed: this group cannot be listed now (the API refuses
	// the request); it stays scheduled and is polled again next cycle.
	KindGroupFailed
	// KindAuth: the credentials were rejected. As KindTransient, and
	// Status.AuthOrConfigError reports it until a listing succeeds.
	KindAuth
	// KindGone: the group no longer exists. From a Lister: it is delivered
	// once as a Dismissed snapshot, then no longer polled. From a Handler:
	// its state says it is dismissed; it is no longer polled.
	KindGone
	// KindFatal: the configuration is wrong and no retry or other group can
	// fix it: Run stops with a *FatalError.
	KindFatal
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindGroupFailed:
		return "group_failed"
	case KindAuth:
		return "auth"
	case KindGone:
		return "gone"
	case KindFatal:
		return "fatal"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failure of one group's listing (or, KindGone, a handler's
// verdict that the group is dismissed), with how the scheduler must react.
// Its message is Err's: wrapping it adds nothing to what is logged.
type Error struct {
	Kind    Kind
	GroupID string
	Err     error
	// Msg, when set, replaces "poll failed" as the message the scheduler
	// logs a failure with; Fields are added to that line (the lister's own
	// view of it, e.g. the API's error kind and code).
	Msg    string
	Fields []zap.Field
}

// Error returns Err's message.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, KindTransient
// when there is none.
func KindOf(err error) Kind { return asError(err).Kind }

// IsGone reports whether err says the group no longer exists (KindGone).
func IsGone(err error) bool { return KindOf(err) == KindGone }

// asError returns err's *Error, or err as a KindTransient one.
func asError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Kind: KindTransient, Err: err}
}
