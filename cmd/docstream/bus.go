package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/docstream/docstream/internal/bus"
)

// openBus opens the bus named by cfg.BusURL. (The bus backends are wired in
// by the CDC/bus work; until then no target that needs the bus can start.)
func openBus(ctx context.Context, cfg *sharedConfig, log *slog.Logger) (bus.Bus, error) {
	return nil, errors.New("event bus not available in this build")
}

// busURL is the URL other processes use to attach to this system's bus.
func (s *system) busURL() string { return s.cfg.BusURL }
