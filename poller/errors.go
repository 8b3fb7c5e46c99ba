package poller

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
