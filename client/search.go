package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/docstream/docstream/api"
)

// Search runs a full-text search (GET /search).
func (c *Client) Search(ctx context.Context, req api.SearchRequest) (*api.SearchResponse, error) {
	q := url.Values{"from": {strconv.Itoa(req.From)}}
	setString(q, "q", req.Query)
	setString(q, "status", string(req.Status))
	setString(q, "created_by", req.CreatedBy)
	setString(q, "signing_status", string(req.SigningStatus))
	setInt(q, "size", req.Size)
	setLSN(q, req.MinLSN)
	if len(req.WaitForExtraction) > 0 {
		q.Set("wait_for", api.WaitForExtraction)
		q["document_id"] = req.WaitForExtraction
	}
	var out api.SearchResponse
	if _, err := c.call(ctx, http.MethodGet, "/search", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Suggest returns titles starting with a prefix (GET /suggest).
func (c *Client) Suggest(ctx context.Context, req api.SuggestRequest) (*api.SuggestResponse, error) {
	q := url.Values{}
	setString(q, "q", req.Query)
	setInt(q, "size", req.Size)
	setLSN(q, req.MinLSN)
	var out api.SuggestResponse
	if _, err := c.call(ctx, http.MethodGet, "/suggest", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Aggregate counts documents per value of a field
// (GET /aggregations/{field}).
func (c *Client) Aggregate(ctx context.Context, req api.AggregationRequest) (*api.AggregationResponse, error) {
	q := url.Values{}
	setString(q, "q", req.Query)
	setInt(q, "size", req.Size)
	setLSN(q, req.MinLSN)
	var out api.AggregationResponse
	if _, err := c.call(ctx, http.MethodGet, "/aggregations/"+url.PathEscape(req.Field), q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
