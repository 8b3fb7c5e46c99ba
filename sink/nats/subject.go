package nats

import (
	"strconv"
	"strings"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// Subject returns the subject an event is published on:
// <prefix>.<sdkappid>.<group token>.<kind>, where kind is the last dotted
// part of the event type (joined, left, dismissed) and the group token is
// GroupToken(group id). Consumers subscribe with wildcards, e.g.
// "rollcall.1400000000.*.joined" or "rollcall.*.<token>.>".
func Subject(prefix string, e schema.Event) string {
	kind := e.Type
	if i := strings.LastIndexByte(kind, '.'); i >= 0 {
		kind = kind[i+1:]
	}
	var b strings.Builder
	b.Grow(len(prefix) + len(e.Data.GroupID) + len(kind) + 24)
	b.WriteString(prefix)
	b.WriteByte('.')
	b.WriteString(strconv.FormatUint(e.Data.SDKAppID, 10))
	b.WriteByte('.')
	b.WriteString(GroupToken(e.Data.GroupID))
	b.WriteByte('.')
	// Types are rollcall's own constants, but escaping keeps a future or
	// malformed type from ever adding a token or a wildcard.
	b.WriteString(GroupToken(kind))
	return b.String()
}

// GroupToken turns a group id into one subject token, groupid.Token:
// every byte outside [A-Za-z0-9_-] becomes %XX (upper-case hex). Dots,
// wildcards (*, >), whitespace and the Tencent "@TGS#" prefix therefore
// cannot split the token or widen a subscription, and the id can be
// recovered with url.PathUnescape. The empty id gives the empty string.
func GroupToken(groupID string) string { return groupid.Token(groupID) }

// validPrefix reports whether p is dot-separated, non-empty tokens of
// [A-Za-z0-9_-]: tokens groupid.Token leaves as they are, so the prefix and
// the group token share one alphabet.
func validPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || groupid.Token(tok) != tok {
			return false
		}
	}
	return true
}
