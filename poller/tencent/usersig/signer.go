package usersig

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Source supplies the usersig for REST calls. The client calls Invalidate
// when Tencent rejects the usersig (expired, unparsable, bad signature) and
// then asks again.
type Source interface {
	// UserSig returns the usersig to send now. It is safe for concurrent use.
	UserSig() (string, error)
	// Invalidate discards the current usersig, so that the next UserSig
	// returns a freshly minted one where the Source can mint.
	Invalidate()
}

var (
	_ Source = (*Signer)(nil)
	_ Source = Static("")
)

// Refresh reasons passed to SignerOptions.OnRefresh; they match the reason
// label of rollcall_usersig_refreshes_total.
const (
	ReasonInitial     = "initial"
	ReasonExpiry      = "expiry"
	ReasonInvalidated = "invalidated"
)

// Expiry bounds for Signer.
const (
	DefaultExpire = 7 * 24 * time.Hour
	// MinExpire: Tencent's error table advises at least 24 h; below an hour
	// the signer would re-mint constantly and clock skew starts to matter.
	MinExpire = time.Hour
)

// refreshAt is the fraction of a usersig's life after which the signer mints
// a new one, leaving 20% of the life as margin for clock skew and for calls
// already in flight.
const refreshAt = 0.8

// SignerOptions configures a Signer.
type SignerOptions struct {
	SDKAppID   uint64
	Identifier string
	// Key is the app's secret key, used as raw bytes.
	Key string
	// Expire is each usersig's lifetime; 0 means DefaultExpire (7 days).
	// Whole seconds; at least MinExpire.
	Expire time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRefresh, when set, is called (under the signer's lock, so it must
	// be quick and must not call back into the Signer) each time a usersig
	// is minted, with ReasonInitial, ReasonExpiry or ReasonInvalidated.
	// Wire it to tencent.Metrics.UserSigRefreshed to count refreshes.
	OnRefresh func(reason string)
}

// Signer caches a usersig and mints a new one once 80% of its life has
// passed, or after Invalidate. It is safe for concurrent use.
type Signer struct {
	o      SignerOptions
	expire int64 // seconds

	mu          sync.Mutex
	sig         string
	refreshDue  time.Time
	invalidated bool
}

// NewSigner validates o and mints the first usersig, so that a bad
// identifier or key is reported at startup rather than on the first call.
func NewSigner(o SignerOptions) (*Signer, error) {
	if o.Expire == 0 {
		o.Expire = DefaultExpire
	}
	if o.Expire < MinExpire {
		return nil, fmt.Errorf("usersig expire %v: must be at least %v", o.Expire, MinExpire)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Signer{o: o, expire: int64(o.Expire / time.Second)}
	if _, err := s.UserSig(); err != nil {
		return nil, err
	}
	return s, nil
}

// UserSig returns the cached usersig, minting a new one first when none
// exists, 80% of its life has passed, or Invalidate was called.
func (s *Signer) UserSig() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	var reason string
	switch {
	case s.sig == "":
		reason = ReasonInitial
	case s.invalidated:
		reason = ReasonInvalidated
	case !now.Before(s.refreshDue):
		reason = ReasonExpiry
	default:
		return s.sig, nil
	}
	sig, err := Generate(s.o.SDKAppID, s.o.Identifier, s.o.Key, s.expire, now, nil)
	if err != nil {
		return "", err
	}
	s.sig, s.invalidated = sig, false
	// Measured from the second Generate truncated to, which is what the
	// server measures from too.
	s.refreshDue = time.Unix(now.Unix(), 0).Add(time.Duration(float64(s.expire)*refreshAt) * time.Second)
	if s.o.OnRefresh != nil {
		s.o.OnRefresh(reason)
	}
	return sig, nil
}

// Invalidate makes the next UserSig mint a fresh usersig.
func (s *Signer) Invalidate() {
	s.mu.Lock()
	s.invalidated = true
	s.mu.Unlock()
}

// Static is a fixed usersig taken from configuration, for deployments that
// mint it elsewhere and do not give rollcall the secret key.
type Static string

// UserSig returns the usersig, or an error if it is empty.
func (s Static) UserSig() (string, error) {
	if s == "" {
		return "", errors.New("static usersig is empty")
	}
	return string(s), nil
}

// Invalidate does nothing: a static usersig cannot be renewed.
func (Static) Invalidate() {}
