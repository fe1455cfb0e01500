package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/search/bleve"
	"github.com/docstream/docstream/internal/search/elastic"
)

// searchIndexes holds the one search index each system opened: Bleve allows
// a single opener per directory, so the indexer and the search service in
// one process must share it.
var searchIndexes struct {
	open sync.Mutex
	m    sync.Map // *system -> search.Index
}

// SearchIndex opens (once) the index named by --search-url: empty is Bleve
// in <data-dir>/index, http(s):// is Elasticsearch/OpenSearch.
func (s *system) SearchIndex(ctx context.Context) (search.Index, error) {
	searchIndexes.open.Lock()
	defer searchIndexes.open.Unlock()
	if x, ok := searchIndexes.m.Load(s); ok {
		return x.(search.Index), nil
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
	searchIndexes.m.Store(s, x)
	s.mu.Lock()
	s.closers = append(s.closers, func() error {
		searchIndexes.m.Delete(s)
		return x.Close()
	})
	s.mu.Unlock()
	return x, nil
}
