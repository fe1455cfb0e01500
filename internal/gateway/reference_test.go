package gateway

import "fmt"

// referenceRoutes are the reference system's routes, as the module table
// in internal/app declares them (app's tests check the two agree).
var referenceRoutes = []Route{
	{Name: "documents", Service: "document", Paths: []string{"/documents"}},
	{Name: "signatures", Service: "signature", Paths: []string{"/signatures", "/documents/{id}/signatures"}},
	{Name: "search", Service: "search", Paths: []string{"/search", "/suggest", "/aggregations"}},
	{Name: "realtime", Service: "realtime", Paths: []string{"/ws", "/auth"}},
}

// DefaultFor is the built-in configuration over the reference routes with
// the given upstream URLs per service name.
func DefaultFor(upstreams map[string][]string) *Config {
	return Builtin(referenceRoutes, upstreams)
}

// Default is DefaultFor on the reference ports of 127.0.0.1.
func Default() *Config {
	return DefaultFor(map[string][]string{
		"document":  {fmt.Sprintf("http://127.0.0.1:%d", 8005)},
		"signature": {fmt.Sprintf("http://127.0.0.1:%d", 8002)},
		"search":    {fmt.Sprintf("http://127.0.0.1:%d", 8003)},
		"realtime":  {fmt.Sprintf("http://127.0.0.1:%d", 8004)},
	})
}
