package cdc

import (
	"context"
	"fmt"
	"net/http"

	"github.com/docstream/docstream/internal/httpx"
)

// Handler serves the engine's /health/live, /health/ready and /metrics.
// A standby is ready: it is doing its job (the "role" detail says
// "standby"). An active engine that cannot publish is not (503): its
// changes wait in the slot.
func (e *Engine) Handler() http.Handler {
	mux := http.NewServeMux()
	httpx.Routes(mux,
		httpx.Check{Name: "bus", Probe: e.bus.Ping},
		httpx.Check{Name: "engine", Critical: true, Probe: func(context.Context) error {
			if st := e.Status(); st.LastError != "" && !st.Streaming && !st.Standby {
				return fmt.Errorf("cdc: %s", st.LastError)
			}
			return nil
		}},
		// Which instance is active shows in the detail: "ok" for the
		// active one, "off" with the reason for a standby.
		httpx.Check{Name: "role", Probe: func(context.Context) error {
			switch st := e.Status(); {
			case st.Active:
				return nil
			case st.Standby:
				return httpx.Off("standby: another engine holds slot " + e.cfg.Slot)
			default:
				return httpx.Off("starting: not active yet")
			}
		}},
	)
	return httpx.Wrap("cdc", e.cfg.Log, mux)
}
