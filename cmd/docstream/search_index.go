package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
	"github.com/docstream/docstream/internal/search/elastic"
)

// SearchIndex opens (once) the index named by --search-url: empty is Bleve
// in <data-dir>/index, http(s):// is Elasticsearch/OpenSearch. Bleve allows
// a single opener per directory, so the indexer and the search service in
// one process share this one.
func (s *system) SearchIndex(ctx context.Context) (search.Index, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.searchIndex != nil {
		return s.searchIndex, nil
	}
	var (
		x   search.Index
		err error
	)
	switch u := s.cfg.SearchURL; {
	case u == "":
		x, err = bleve.Open(filepath.Join(s.cfg.DataDir, "index"))
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		x, err = elastic.Open(ctx, u, nil)
	default:
		return nil, fmt.Errorf("--search-url %q: want http(s)://host:port[/index] for Elasticsearch/OpenSearch, or empty for the embedded Bleve index", u)
	}
	if err != nil {
		return nil, err
	}
	s.searchIndex = x
	s.closers = append(s.closers, x.Close)
	return x, nil
}
