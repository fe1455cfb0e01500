package signature

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/jackc/pgx/v5"
	gcblob "gocloud.dev/blob"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/postgres"
)

// issueCertificate renders the certificate of completion of a completed
// request, seals the audit chain (audit.Seal) in the same transaction,
// stores the PDF beside the document, moves the document to completed and
// schedules the mail to the owner and cc recipients.
func (w *Workflow) issueCertificate(ctx context.Context, tx pgx.Tx, j job) error {
	r, err := w.lockRequest(ctx, tx, j.RequestID)
	if err != nil {
		return err
	}
	if r.State != api.RequestCompleted || r.CertificateSHA256 != nil {
		return nil
	}
	var title string
	if err := tx.QueryRow(ctx, `SELECT title FROM documents.documents WHERE id = $1`, r.DocumentID).Scan(&title); err != nil {
		return postgres.Error(err, "document "+r.DocumentID)
	}
	// The chain's head now (every entry of the request is in it) is
	// signed and kept as a checkpoint; the certificate shows it.
	seal, err := audit.Seal(ctx, tx, r.DocumentID)
	if err != nil {
		return err
	}
	sigs := map[string]certSignature{}
	for _, rc := range r.Recipients {
		if rc.SignatureID == nil {
			continue
		}
		var cs certSignature
		var data, key *string
		if err := tx.QueryRow(ctx, `SELECT signature_data, signature_key, coalesce(signature_content_type, '') FROM signatures.signatures WHERE id = $1`,
			*rc.SignatureID).Scan(&data, &key, &cs.contentType); err != nil {
			return postgres.Error(err, "signature "+*rc.SignatureID)
		}
		if data != nil {
			cs.text = *data
		}
		if key != nil && strings.HasPrefix(cs.contentType, "image/") {
			if br, ok := w.svc.blobs.(interface {
				NewReader(context.Context, string, *gcblob.ReaderOptions) (*gcblob.Reader, error)
			}); ok {
				if rd, err := br.NewReader(ctx, *key, nil); err == nil {
					cs.image, _ = io.ReadAll(rd)
					rd.Close()
				}
			}
		}
		sigs[rc.ID] = cs
	}
	pdf, err := renderCertificate(r, title, sigs, &seal, w.now())
	if err != nil {
		return err
	}
	sum := sha256.Sum256(pdf)
	key := fmt.Sprintf("%s/certificate-%s.pdf", r.DocumentID, r.ID)
	if err := w.content.WriteAll(ctx, key, pdf, &gcblob.WriterOptions{ContentType: "application/pdf"}); err != nil {
		return fmt.Errorf("store certificate: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE signing.signing_requests SET certificate_key = $2, certificate_sha256 = $3, updated_at = now() WHERE id = $1`,
		r.ID, key, hex.EncodeToString(sum[:])); err != nil {
		return postgres.Error(err, "record certificate")
	}
	data := map[string]any{"request_id": r.ID, "certificate_sha256": hex.EncodeToString(sum[:]),
		"chain_head": seal.Hash, "chain_seq": seal.Seq}
	if err := w.appendAudit(ctx, tx, AuditEntry{DocumentID: r.DocumentID, Type: "certificate.issued", Actor: "service:signature", Data: data}); err != nil {
		return err
	}
	if err := w.docStatus(ctx, tx, r.ID, document.StatusCompleted); err != nil {
		return err
	}
	return enqueue(ctx, tx, "completed_mail", r.ID, "", "completed", time.Time{})
}

// certSignature is what the certificate shows of one signature.
type certSignature struct {
	contentType string
	text        string
	image       []byte
}

// renderCertificate draws the certificate: the document and its hash, each
// recipient with times, address, user agent and signature (the image, or
// the signature_data as text), and the audit chain's head and the server's
// signature of it.
func renderCertificate(r *SigningRequest, title string, sigs map[string]certSignature, seal *audit.Checkpoint, now time.Time) ([]byte, error) {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetTitle("Certificate of completion", true)
	p.SetCreator("docstream", true)
	p.SetAutoPageBreak(true, 15)
	p.AddPage()
	tr := p.UnicodeTranslatorFromDescriptor("")
	p.SetFont("Helvetica", "B", 16)
	p.CellFormat(0, 10, "Certificate of completion", "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 10)
	line := func(label, value string) {
		p.SetFont("Helvetica", "B", 9)
		p.CellFormat(40, 5, label, "", 0, "L", false, 0, "")
		p.SetFont("Courier", "", 9)
		p.MultiCell(0, 5, tr(value), "", "L", false)
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	line("Document", tr(title))
	line("Document id", r.DocumentID)
	line("Content SHA-256", r.ContentSHA256)
	line("Request id", r.ID)
	line("Requested by", r.CreatedBy)
	line("Sent", ts(r.SentAt))
	line("Completed", ts(r.CompletedAt))
	line("Issued", now.UTC().Format(time.RFC3339))
	p.Ln(4)
	p.SetFont("Helvetica", "B", 12)
	p.CellFormat(0, 8, "Recipients", "", 1, "L", false, 0, "")
	for i, rc := range r.Recipients {
		p.SetFont("Helvetica", "B", 10)
		p.CellFormat(0, 6, tr(fmt.Sprintf("%d. %s <%s> - %s, order %d: %s", i+1, rc.Name, rc.Email, rc.Role, rc.Order, rc.State)), "", 1, "L", false, 0, "")
		line("Notified", ts(rc.NotifiedAt))
		line("Viewed", ts(rc.ViewedAt))
		line("Acted", ts(rc.ActedAt))
		line("Consent", ts(rc.ConsentAt))
		line("IP address", deref(rc.IPAddress))
		line("User agent", deref(rc.UserAgent))
		if cs, ok := sigs[rc.ID]; ok {
			if it := imageType(cs.contentType); it != "" && len(cs.image) > 0 {
				name := "sig-" + rc.ID
				opt := fpdf.ImageOptions{ImageType: it, ReadDpi: false}
				p.RegisterImageOptionsReader(name, opt, bytes.NewReader(cs.image))
				if p.Ok() {
					p.ImageOptions(name, p.GetX()+40, p.GetY(), 50, 0, true, opt, 0, "")
				} else {
					// A broken image is shown as what it is.
					p.ClearError()
					line("Signature", cs.text)
				}
			} else if cs.text != "" {
				line("Signature", cs.text)
			}
		}
		p.Ln(2)
	}
	p.Ln(4)
	p.SetFont("Helvetica", "B", 12)
	p.CellFormat(0, 8, "Audit trail", "", 1, "L", false, 0, "")
	line("Chain head", seal.Hash)
	line("Entry", fmt.Sprintf("%d (GET /documents/%s/audit)", seal.Seq, r.DocumentID))
	line("Signed at", seal.SignedAt)
	if seal.Signature != "" {
		line("Key id", seal.KeyID)
		line("Server signature", seal.Signature)
	} else {
		line("Server signature", "none: no audit signing key is configured")
	}
	var out bytes.Buffer
	if err := p.Output(&out); err != nil {
		return nil, fmt.Errorf("render certificate: %w", err)
	}
	return out.Bytes(), nil
}

func imageType(ct string) string {
	switch ct {
	case "image/png":
		return "PNG"
	case "image/jpeg":
		return "JPG"
	case "image/gif":
		return "GIF"
	}
	return ""
}
