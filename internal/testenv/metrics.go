package testenv

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is the body of url, a /metrics, failing the test unless it
// answers 200.
func Scrape(t testing.TB, url string) string {
	t.Helper()
	resp := Do(t, http.MethodGet, url, nil, nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// Metric is the value of the sample name whose labels include labels (0
// when there is none) in text, a Prometheus text exposition. A
// histogram's or summary's name_count and name_sum are its sample count
// and sum, as the exposition writes them.
func Metric(t testing.TB, text, name string, labels map[string]string) float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing the metrics: %v", err)
	}
	value := func(m *dto.Metric) float64 {
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		default:
			return m.GetUntyped().GetValue()
		}
	}
	fam := fams[name]
	if fam == nil {
		for _, suffix := range []string{"_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] != nil {
				fam = fams[base]
				value = func(m *dto.Metric) float64 {
					switch {
					case m.Histogram != nil && suffix == "_count":
						return float64(m.GetHistogram().GetSampleCount())
					case m.Histogram != nil:
						return m.GetHistogram().GetSampleSum()
					case suffix == "_count":
						return float64(m.GetSummary().GetSampleCount())
					default:
						return m.GetSummary().GetSampleSum()
					}
				}
			}
		}
	}
	for _, m := range fam.GetMetric() {
		if hasLabels(m, labels) {
			return value(m)
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
