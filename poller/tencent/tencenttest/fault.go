package tencenttest

import (
	"fmt"
	"time"
)

// FaultKind is the kind of misbehaviour a Fault injects.
type FaultKind int

// Fault kinds.
const (
	// FaultNone is no fault.
	FaultNone FaultKind = iota
	// FaultHTTP502 answers with an HTML gateway error page and HTTP status
	// 502, or Fault.Code if set (e.g. 503, 504).
	FaultHTTP502
	// FaultErrorCode answers HTTP 200, ActionStatus FAIL, ErrorCode
	// Fault.Code (10002 if unset).
	FaultErrorCode
	// FaultInvalidJSON answers HTTP 200 with the real answer cut in half.
	FaultInvalidJSON
	// FaultSlow waits Fault.Delay, or until the client gives up, then
	// answers normally.
	FaultSlow
	// FaultMissingAccount drops Member_Account from the first member of a
	// get_members answer. It matches only get_members calls.
	FaultMissingAccount
	// FaultHangup closes the connection without answering.
	FaultHangup
)

// String returns the kind's name as logged, e.g. "http_502".
func (k FaultKind) String() string {
	switch k {
	case FaultNone:
		return "none"
	case FaultHTTP502:
		return "http_502"
	case FaultErrorCode:
		return "error_code"
	case FaultInvalidJSON:
		return "invalid_json"
	case FaultSlow:
		return "slow"
	case FaultMissingAccount:
		return "missing_account"
	case FaultHangup:
		return "hangup"
	default:
		return fmt.Sprintf("FaultKind(%d)", int(k))
	}
}

// Fault makes matching calls misbehave. A call matches when Command, Group
// and Page all match; the first matching fault, in the order injected,
// applies. Faults are checked after the query and auth checks and after the
// body parsed as JSON, so a call that fails those is answered normally.
type Fault struct {
	// Command limits the fault to one command, e.g. "get_members"; "" is any.
	Command string
	// Group limits the fault to calls about one GroupId; "" is any.
	Group string
	// Page limits the fault to one 1-based get_members page (1 is the
	// Timestamp 0 call); 0 is any call.
	Page int
	Kind FaultKind
	// Code is the ErrorCode for FaultErrorCode, the HTTP status for
	// FaultHTTP502.
	Code int
	// Delay is how long FaultSlow waits.
	Delay time.Duration
	// Times is how many calls the fault applies to; 0 is forever.
	Times int
}

type faultState struct {
	f    Fault
	left int // calls left; unused when f.Times == 0
}

// InjectFault adds f after the faults already injected.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{f: f, left: f.Times})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the first fault matching the call and uses one of its
// Times.
func (s *Server) takeFault(command, groupID string, page int) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, fs := range s.faults {
		f := fs.f
		if f.Command != "" && f.Command != command ||
			f.Group != "" && f.Group != groupID ||
			f.Page != 0 && f.Page != page ||
			f.Kind == FaultMissingAccount && command != cmdGetMembers {
			continue
		}
		if f.Times > 0 {
			fs.left--
			if fs.left <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return f, true
	}
	return Fault{}, false
}
