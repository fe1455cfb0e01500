package api

// Extraction statuses.
const (
	// ExtractionPending: waiting for a worker (new or replaced content, a
	// re-run, or a transient failure waiting out its backoff).
	ExtractionPending = "pending"
	// ExtractionRunning: a worker holds it.
	ExtractionRunning = "running"
	// ExtractionDone: text (and a thumbnail where one could be made) is
	// stored; once the indexer has applied the extraction's change (a
	// search with min_lsn = the X-Commit-LSN of the GET that saw "done"),
	// a search finds its words.
	ExtractionDone = "done"
	// ExtractionFailed: the file could not be read (Reason says why); it is
	// not retried until asked (POST /documents/{id}/extract).
	ExtractionFailed = "failed"
	// ExtractionSkipped: plain text, indexed directly from the content.
	ExtractionSkipped = "skipped"
	// ExtractionUnsupported: no extractor for the type, or its tool is not
	// installed on the extractor.
	ExtractionUnsupported = "unsupported"
)

// Extraction is what the extractor made of a document's content
// (GET /documents/{id}/extraction, POST /documents/{id}/extract).
type Extraction struct {
	DocumentID    string `json:"document_id"`
	ContentSHA256 string `json:"content_sha256"`
	Status        string `json:"status"`
	Format        string `json:"format"`         // pdf, image, office, html, text
	Kind          string `json:"kind,omitempty"` // docx, odt, png…
	Pages         int    `json:"pages"`          // 0 when the format has none
	Language      string `json:"language"`       // the text's language detected (ISO 639-3, e.g. "eng"); "" when too short or unsure
	TextSize      int64  `json:"text_size"`      // bytes of text stored
	Truncated     bool   `json:"truncated"`      // the text or the pages read were cut at a cap (Error says which)
	Thumbnail     bool   `json:"thumbnail"`      // GET /documents/{id}/thumbnail has one
	OCR           bool   `json:"ocr"`            // the text came from OCR
	DurationMs    int64  `json:"duration_ms"`    // of the last run
	Reason        string `json:"reason"`         // on failure: timeout, memory, zip_bomb, encrypted, corrupt, image_too_large, unsupported, crashed, killed; while pending again after a transient failure: storage, killed
	Error         string `json:"error"`          // detail of a failure or of a truncation
	Attempts      int    `json:"attempts"`       // runs since the content or a re-run was requested
	RequestedAt   Time   `json:"requested_at"`   // when it was last queued
	ExtractedAt   *Time  `json:"extracted_at"`   // when the last run ended
}

// ExtractRequest re-runs extractions in bulk (POST /extractions/rerun).
type ExtractRequest struct {
	// All queues every document, including those with no extraction yet
	// (documents older than the bus's retention, or stored before the
	// extractor existed).
	All bool `json:"all"`
	// Failed queues the failed and unsupported ones (a tool installed
	// since, a limit raised).
	Failed bool `json:"failed"`
}

// ExtractResponse says how many documents were queued, and how many
// extractions are waiting in all.
type ExtractResponse struct {
	Queued  int64 `json:"queued"`
	Pending int64 `json:"pending"`
}

// ExtractionQueue is the queue's state (GET /extractions/queue), which
// `docstream extract` polls for its progress bar.
type ExtractionQueue struct {
	Pending int64            `json:"pending"`
	Running int64            `json:"running"`
	ByState map[string]int64 `json:"by_status"`
}
