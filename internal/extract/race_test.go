//go:build race

package extract_test

// raceBuild: this test binary, re-executed as the extraction child, runs
// the race detector's runtime, whose own allocations fail in more shapes
// under an address-space limit than the plain Go runtime's.
const raceBuild = true
