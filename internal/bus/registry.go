package bus

import (
	"sort"
	"sync"
)

// Watched is what a backend keeps for one subscription it watches: its
// state as reported by Consumers.
type Watched interface {
	comparable
	State() ConsumerState
}

// Registry is the set of named subscriptions a backend watches; its
// Consumers is the one implementation of Watcher.Consumers for every
// backend. The zero value is ready to use.
type Registry[W Watched] struct {
	mu sync.Mutex
	m  map[W]struct{}
}

// Add registers w (a subscription that started).
func (r *Registry[W]) Add(w W) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[W]struct{}{}
	}
	r.m[w] = struct{}{}
}

// Remove forgets w (a subscription that ended).
func (r *Registry[W]) Remove(w W) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, w)
}

// All is every registered subscription, in no order.
func (r *Registry[W]) All() []W {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]W, 0, len(r.m))
	for w := range r.m {
		out = append(out, w)
	}
	return out
}

// Consumers is the state of every registered subscription, by name.
func (r *Registry[W]) Consumers() []ConsumerState {
	all := r.All()
	out := make([]ConsumerState, 0, len(all))
	for _, w := range all {
		out = append(out, w.State())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
