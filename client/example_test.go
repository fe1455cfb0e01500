package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/client"
)

// server is where the examples send their calls: `docstream dev`'s gateway.
// TestExamplesAgainstARunningSystem points it at a system it was given.
var server = "http://localhost:8000"

// The reference walkthrough: create a document, sign it, read it back
// signed.
func Example() {
	ctx := context.Background()
	c, err := client.New(server)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	doc, err := c.CreateDocument(ctx, api.CreateDocumentRequest{
		Title:     "Sales Agreement Q4 2025",
		Content:   "This agreement outlines the terms...",
		CreatedBy: "ebemad@company.com",
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	sig, err := c.CreateSignature(ctx, api.CreateSignatureRequest{
		DocumentID:     doc.ID,
		SignerEmail:    "ebemad@client.com",
		SignerName:     "Ebrahim Emad",
		SignatureData:  "base64encoded_signature_image_data_here",
		DocumentStatus: api.StatusPending,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("signed by", sig.SignerName, "- status update", sig.DocumentStatusUpdate)
	// The signature service moves the document to signed (at once, or
	// from its outbox if the document service was unreachable).
	for {
		d, err := c.GetDocument(ctx, doc.ID)
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		if d.Status == api.StatusSigned {
			fmt.Println("status", d.Status, "version", d.Version)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Errors are *apperr.Error: the code says what went wrong, the details
// name the fields.
func Example_errors() {
	ctx := context.Background()
	c, err := client.New(server)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	_, err = c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "No author", Content: "…"})
	var e *apperr.Error
	if errors.As(err, &e) && e.Code == apperr.Validation {
		for _, f := range e.Details {
			fmt.Printf("%d: %s %s\n", client.StatusCode(err), f.Field, f.Message)
		}
	}
	_, err = c.GetDocument(ctx, "0194c3a0-0000-7000-8000-000000000000")
	fmt.Println(apperr.CodeOf(err) == apperr.NotFound)
}

// A file is streamed as multipart/form-data: it is never held in memory.
func ExampleClient_UploadDocument() {
	ctx := context.Background()
	c, err := client.New(server)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	// Any io.Reader: an *os.File, a network stream…
	content := strings.NewReader(strings.Repeat("Terms and conditions.\n", 1000))
	doc, err := c.UploadDocument(ctx, client.Upload{
		Title:     "Terms",
		CreatedBy: "legal@company.com",
		FileName:  "terms.txt",
		FileType:  "text/plain",
		Content:   content,
	})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(doc.ContentType, doc.ContentSize)

	// Read it back, from byte 22, 21 bytes.
	part, err := c.DocumentContentRange(ctx, doc.ID, 22, 21)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer part.Close()
	b, err := io.ReadAll(part)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("%q of %d bytes\n", b, part.Size)
}

// Optimistic concurrency: an update made against a version that is no
// longer current changes nothing.
func ExampleClient_UpdateDocumentIfVersion() {
	ctx := context.Background()
	c, err := client.New(server)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	doc, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Draft", Content: "v1", CreatedBy: "a@company.com"})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	sent, err := c.UpdateDocumentIfVersion(ctx, doc.ID, doc.Version, api.UpdateDocumentRequest{Status: api.StatusSent})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(sent.Status, sent.Version)
	// doc.Version is stale now.
	_, err = c.UpdateDocumentIfVersion(ctx, doc.ID, doc.Version, api.UpdateDocumentRequest{Title: "Final"})
	fmt.Println(apperr.CodeOf(err))
}

// Read your own write: the search waits until the update is indexed.
func ExampleClient_Search() {
	ctx := context.Background()
	c, err := client.New(server)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	doc, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Quarterly report", Content: "Revenue grew.", CreatedBy: "cfo@company.com"})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	res, err := c.Search(ctx, api.SearchRequest{Query: "quarterly", CreatedBy: "cfo@company.com", MinLSN: doc.CommitLSN})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	for _, h := range res.Documents {
		if h.ID == doc.ID {
			fmt.Println("found", h.Title, "stale:", res.Stale)
		}
	}
	agg, err := c.Aggregate(ctx, api.AggregationRequest{Field: api.AggregateStatus, MinLSN: doc.CommitLSN})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(len(agg.Values) > 0)
}

// Follow a document live. Since makes the stream start right after the
// document's creation, so no later change is missed even though the
// socket opens after the update; Resume reconnects after the last message
// if the connection drops.
func ExampleClient_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(server)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	doc, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "Watched", Content: "…", CreatedBy: "a@company.com"})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	if _, err := c.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Status: api.StatusSent}); err != nil {
		fmt.Println("error:", err)
		return
	}
	tok, err := c.DevToken(ctx, "example-user", "") // docstream dev only; elsewhere use your identity provider's JWT
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	w, err := c.Watch(ctx, doc.ID, client.WatchOptions{Token: tok.AccessToken, Since: doc.CommitLSN, Resume: true})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer w.Close()
	m, err := w.Next(ctx)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	switch d := m.Data.(type) {
	case api.StatusData:
		fmt.Println(m.Type, d.OldStatus, "→", d.NewStatus)
	default:
		fmt.Println(m.Type)
	}
}
