package httpx

import (
	"maps"
	"net/http"
	"slices"
)

// Route is one route of a service's API: the admission class its requests
// are held to ("": not bounded, for routes that hold a connection without
// using CPU) and its handler, built from the service's server S.
//
// A service keeps its routes in one map from http.ServeMux pattern to
// Route, registers them with Handle and lists them with Patterns; the
// public client's tests read that list to require a client method for
// every route.
type Route[S any] struct {
	Class   Class
	Handler func(S) http.Handler
}

// Handle registers every route on mux, for server s, under adm.
func Handle[S any](mux *http.ServeMux, adm *Admission, s S, routes map[string]Route[S]) {
	for pattern, r := range routes {
		mux.Handle(pattern, adm.Wrap(r.Class, r.Handler(s)))
	}
}

// Patterns lists the patterns of routes, sorted.
func Patterns[S any](routes map[string]Route[S]) []string {
	return slices.Sorted(maps.Keys(routes))
}
