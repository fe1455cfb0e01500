package extractor

// SetRunner puts r in place of the extraction child (tests that need an
// extraction to block, fail transiently or fail for good on cue).
func (x *Extractor) SetRunner(r Runner) { x.runner = r }

// SetContentReader puts c in place of object storage for reading content
// (tests that make reads fail).
func (x *Extractor) SetContentReader(c ContentReader) { x.content = c }
