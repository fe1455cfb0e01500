package cdc

import (
	"context"
	"fmt"
	"net/http"

	"github.com/docstream/docstream/internal/httpx"
)

// Handler serves the engine's /health/live, /health/ready and /metrics.
// A standby is ready: it is doing its job. An active engine that keeps
// failing is not.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	httpx.Routes(mux,
		httpx.Check{Name: "bus", Probe: e.bus.Ping},
		httpx.Check{Name: "engine", Probe: func(context.Context) error {
			if st := e.Status(); st.LastError != "" && !st.Streaming {
				return fmt.Errorf("cdc: %s", st.LastError)
			}
			return nil
		}},
	)
	return httpx.Wrap("cdc", e.cfg.Log, mux)
}
