package api

// Health is the answer of GET /health/live (Status only) and GET
// /health/ready on every service. Ready means "this process can serve": a
// dependency that is down is detail under a 200 (degraded); ready answers
// 503 while the process shuts down (Status draining) and while what it
// exists to do fails (Status unavailable: a stalled bus consumer, an
// active CDC engine that cannot publish, realtime with no live stream).
type Health struct {
	// Status is ok, degraded (a dependency is down; the service answers
	// what it can), unavailable or draining.
	Status string                 `json:"status"`
	Checks map[string]CheckResult `json:"checks,omitempty"`
}

// CheckResult is one dependency's state in Health.
type CheckResult struct {
	Status string `json:"status"` // ok, down, or off (not running in this configuration; Error says why)
	Error  string `json:"error,omitempty"`
}
