package gateway

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/httpx"
)

// patterns expands a route path into ServeMux patterns: a plain path is a
// prefix (itself and its subtree), a path with {wildcards} or a trailing
// slash is used as written.
func patterns(r Route) []string {
	var paths []string
	for _, p := range r.Paths {
		switch {
		case strings.Contains(p, "{"), strings.HasSuffix(p, "/"):
			paths = append(paths, p)
		default:
			paths = append(paths, p, p+"/")
		}
	}
	if len(r.Methods) == 0 {
		return paths
	}
	var out []string
	for _, m := range r.Methods {
		for _, p := range paths {
			out = append(out, m+" "+p)
		}
	}
	return out
}

// buildMux builds the routing table. ServeMux gives us most-specific-match
// precedence and refuses ambiguous pattern pairs by panicking; that panic is
// turned into an error naming the route.
func buildMux(c *Config, handlerFor func(service string) http.Handler) (mux *http.ServeMux, err error) {
	mux = http.NewServeMux()
	rootTaken := false
	for i, r := range c.Routes {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("routes[%d]", i)
		}
		for _, p := range patterns(r) {
			if err := register(mux, p, handlerFor(r.Service)); err != nil {
				return nil, fmt.Errorf("routes[%d] (%s): path %q: %v", i, name, p, err)
			}
			if p == "/" {
				rootTaken = true
			}
		}
	}
	if !rootTaken {
		// A route at "/" sends everything unknown to its service instead.
		mux.Handle("/", httpx.Unmatched(mux))
	}
	return mux, nil
}

func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

func routeTable(c *Config) []api.GatewayRoute {
	var out []api.GatewayRoute
	for i, r := range c.Routes {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("routes[%d]", i)
		}
		for _, p := range patterns(r) {
			out = append(out, api.GatewayRoute{Route: name, Service: r.Service, Pattern: p})
		}
	}
	return out
}
