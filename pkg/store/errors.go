package store

// DriverError is an engine's driver error retold in one line for people:
// its text is Msg alone, while errors.Is finds Kind (one of this package's
// sentinels, or nil) and errors.As still reaches the driver's own error.
// Engines build it in their one error-interpretation function.
type DriverError struct {
	Msg  string
	Kind error
	Err  error
}

func (e *DriverError) Error() string { return e.Msg }

// Unwrap exposes the sentinel (if any) and the driver error.
func (e *DriverError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}
