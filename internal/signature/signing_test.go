package signature

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/proto/documentpb"

	blobstore "github.com/docstream/docstream/internal/blob"
	"github.com/docstream/docstream/internal/document"
)

// startMailpit starts a real SMTP sink for one test.
func startMailpit(t *testing.T) *localstack.Mailpit {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	tools := filepath.Join(filepath.Dir(file), "..", "..", ".tools", "bin")
	mp, err := localstack.StartMailpit(context.Background(), t.TempDir(), tools)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mp.Stop)
	return mp
}

// wfInstance is one signature service instance with the signing workflow
// and its scheduler, as a process runs them.
type wfInstance struct {
	url  string
	wf   *Workflow
	stop func()
}

func (e *env) startWorkflow(t *testing.T, mp *localstack.Mailpit) *wfInstance {
	t.Helper()
	n, err := NewSMTPNotifier(mp.SMTPURL(), "docstream@test.invalid")
	if err != nil {
		t.Fatal(err)
	}
	return e.startWorkflowWith(t, wfOptions{notifier: n})
}

// wfOptions vary an instance of startWorkflowWith.
type wfOptions struct {
	notifier Notifier
	// mailPerMinute is --signing-mail-per-minute (0: 1000, no limit a
	// test reaches).
	mailPerMinute int
	// required runs the instance in required auth mode (the document
	// service must be too: newRequiredEnv), callers named by the test
	// principal header.
	required bool
	log      *slog.Logger // nil: testLog()
	// redisURL is the Redis of the mail counts (empty: the package's).
	redisURL string
}

func (e *env) startWorkflowWith(t *testing.T, o wfOptions) *wfInstance {
	t.Helper()
	var dopts []grpc.DialOption
	if o.required {
		dopts = append(dopts, grpc.WithChainUnaryInterceptor(forwardTestPrincipal))
	}
	conn, err := Dial(e.doc.addr, dopts...)
	if err != nil {
		t.Fatal(err)
	}
	log := o.log
	if log == nil {
		log = testLog()
	}
	if o.mailPerMinute == 0 {
		o.mailPerMinute = 1000
	}
	svc := NewService(NewStore(e.pool), documentpb.NewDocumentServiceClient(conn), e.sigs,
		Options{CallTimeout: 5 * time.Second, Retries: 2, RetryBackoff: 20 * time.Millisecond}, log)
	if o.required {
		svc.SetMode(auth.ModeRequired)
	}
	docs, err := blobstore.Open(context.Background(), "file://"+e.blobDir, document.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	redisURL := o.redisURL
	if redisURL == "" {
		redisURL = testenv.Redis().URL()
	}
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropts)
	// One count per test, shared by the test's instances (the package's
	// tests share one Redis).
	wf := NewWorkflow(svc, docs, o.notifier, WorkflowOptions{PublicURL: "http://docs.test.invalid", MailPerMinute: o.mailPerMinute,
		Redis: rdb, MailKeyPrefix: mailKeyPrefix + e.dbURL + ":"})
	cfg := DefaultConfig()
	cfg.Workflow = wf
	srv := httptest.NewServer(withTestPrincipal(NewServer(svc, cfg, log)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = NewScheduler(wf, SchedulerOptions{Interval: 100 * time.Millisecond, MaxBackoff: time.Second}).Run(ctx)
	}()
	var once sync.Once
	in := &wfInstance{url: srv.URL, wf: wf, stop: func() {
		once.Do(func() {
			srv.Close()
			cancel()
			<-done
			conn.Close()
			docs.Close()
			rdb.Close()
		})
	}}
	t.Cleanup(in.stop)
	return in
}

var linkRE = regexp.MustCompile(`http://docs\.test\.invalid/app/invitations/([A-Za-z0-9_-]{43})`)

// mailsTo returns the messages mailpit holds for addr.
func mailsTo(t *testing.T, mp *localstack.Mailpit, addr string) []localstack.MailSummary {
	t.Helper()
	ms, err := mp.Messages(context.Background(), "to:"+addr)
	if err != nil {
		t.Fatal(err)
	}
	// The search may match loosely; keep exactly addr's.
	var out []localstack.MailSummary
	for _, m := range ms {
		for _, to := range m.To {
			if strings.EqualFold(to.Address, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// tokenFor waits for a mail to addr whose subject starts with prefix and
// returns the invitation token it carries.
func tokenFor(t *testing.T, mp *localstack.Mailpit, addr, prefix string) string {
	t.Helper()
	var tok string
	testenv.WaitFor(t, "an invitation mail to "+addr, func() bool {
		for _, m := range mailsTo(t, mp, addr) {
			if !strings.HasPrefix(m.Subject, prefix) {
				continue
			}
			full, err := mp.Message(context.Background(), m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if sm := linkRE.FindStringSubmatch(full.Text); sm != nil {
				tok = sm[1]
				return true
			}
		}
		return false
	})
	return tok
}

func (in *wfInstance) do(t *testing.T, method, path string, body, out any, header ...string) int {
	t.Helper()
	return testenv.Do(t, method, in.url+path, body, out, header...).StatusCode
}

func asRecipient(email string) []string {
	p := auth.Principal{Kind: auth.KindUser, Subject: email, Email: email, EmailVerified: true}
	return []string{testPrincipal, principalJSON(p)}
}

func pngSignature(t *testing.T) string {
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for x := 0; x < 40; x++ {
		img.Set(x, 10, color.Black)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

func (in *wfInstance) request(t *testing.T, rid string) api.SigningRequest {
	t.Helper()
	var r api.SigningRequest
	if code := in.do(t, "GET", "/signing-requests/"+rid, nil, &r); code != http.StatusOK {
		t.Fatalf("get request: %d", code)
	}
	return r
}

// TestSigningRequestTwoSequentialSignersAndAParallelApprover drives the
// whole workflow through invitation links read back from a real SMTP sink:
// A (signer) and C (approver) in order 1, B (signer) in order 2, D (cc).
func TestSigningRequestTwoSequentialSignersAndAParallelApprover(t *testing.T) {
	e := newEnv(t)
	mp := startMailpit(t)
	in := e.startWorkflow(t, mp)
	doc := e.createDocument(t, "Lease agreement", "the pinned terms")

	var req api.SigningRequest
	code := in.do(t, "POST", "/documents/"+doc.ID+"/signing-requests", api.CreateSigningRequest{
		Message: "Please sign the lease",
		Recipients: []api.RecipientInput{
			{Email: "a@example.com", Name: "Alice", Role: api.RoleSigner, Order: 1},
			{Email: "c@example.com", Name: "Carol", Role: api.RoleApprover, Order: 1},
			{Email: "b@example.com", Name: "Bob", Role: api.RoleSigner, Order: 2},
			{Email: "d@example.com", Name: "Dan", Role: api.RoleCC, Order: 3},
		},
	}, &req)
	if code != http.StatusCreated || req.State != api.RequestSent || req.ContentSHA256 != doc.ContentSHA256 || len(req.Recipients) != 4 {
		t.Fatalf("create: %d %+v", code, req)
	}
	// At most one open request per document.
	if code := in.do(t, "POST", "/documents/"+doc.ID+"/signing-requests", api.CreateSigningRequest{
		Recipients: []api.RecipientInput{{Email: "x@example.com", Role: api.RoleSigner}}}, nil); code != http.StatusConflict {
		t.Fatalf("second open request: %d, want 409", code)
	}
	e.waitStatus(t, doc.ID, "sent", time.Minute)

	tokA := tokenFor(t, mp, "a@example.com", "Please sign")
	tokC := tokenFor(t, mp, "c@example.com", "Please approve")
	if n := len(mailsTo(t, mp, "b@example.com")); n != 0 {
		t.Fatalf("b was mailed %d times before order 1 finished", n)
	}

	// Out of order: B, signed in with a verified email, is refused.
	if code := in.do(t, "POST", "/signing-requests/"+req.ID+"/sign", api.InvitationAction{Consent: true}, nil, asRecipient("b@example.com")...); code != http.StatusConflict {
		t.Fatalf("out of order sign: %d, want 409", code)
	}
	// Forged and malformed tokens read as missing.
	forged := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for _, tok := range []string{forged, "short", tokA[:42] + "x"} {
		if code := in.do(t, "POST", "/invitations/"+tok+"/sign", api.InvitationAction{Consent: true}, nil); code != http.StatusNotFound {
			t.Fatalf("forged token %q: %d, want 404", tok, code)
		}
	}

	// A opens the invitation and the pinned content.
	var inv api.Invitation
	if code := in.do(t, "GET", "/invitations/"+tokA, nil, &inv); code != http.StatusOK || !inv.CanAct || inv.ContentSHA256 != req.ContentSHA256 || inv.DocumentTitle != "Lease agreement" {
		t.Fatalf("view: %d %+v", code, inv)
	}
	resp, err := http.Get(in.url + "/invitations/" + tokA + "/content")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "the pinned terms" {
		t.Fatalf("content: %d %q", resp.StatusCode, body)
	}
	e.waitStatus(t, doc.ID, "viewed", time.Minute)

	// While out for signature the document cannot change.
	for _, c := range []struct {
		method string
		body   any
	}{
		{"PATCH", map[string]any{"title": "Other"}},
		{"PATCH", map[string]any{"status": "cancelled"}},
		{"DELETE", nil},
	} {
		if resp := testenv.Do(t, c.method, e.doc.http.URL+"/documents/"+doc.ID, c.body, nil); resp.StatusCode != http.StatusConflict {
			t.Fatalf("%s %v while out for signature: %d, want 409", c.method, c.body, resp.StatusCode)
		}
	}
	// The one-signer shortcut answers 409 too.
	if resp := testenv.Do(t, "POST", in.url+"/signatures", map[string]any{"document_id": doc.ID, "signer_email": "a@example.com", "signer_name": "A"}, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("POST /signatures on a document out for signature: %d, want 409", resp.StatusCode)
	}

	// Consent is required.
	if code := in.do(t, "POST", "/invitations/"+tokA+"/sign", api.InvitationAction{}, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("sign without consent: %d, want 422", code)
	}
	// A signs with an image; a second sign and a second view are refused.
	if code := in.do(t, "POST", "/invitations/"+tokA+"/sign", api.InvitationAction{Consent: true, SignatureData: pngSignature(t)}, &inv, "User-Agent", "alice-browser/1.0"); code != http.StatusOK || inv.State != api.RecipientSigned {
		t.Fatalf("sign: %d %+v", code, inv)
	}
	if code := in.do(t, "POST", "/invitations/"+tokA+"/sign", api.InvitationAction{Consent: true}, nil); code != http.StatusConflict {
		t.Fatalf("sign twice: %d, want 409", code)
	}
	if code := in.do(t, "GET", "/invitations/"+tokA, nil, nil); code != http.StatusConflict {
		t.Fatalf("view after acting: %d, want 409", code)
	}
	// A signer cannot approve, an approver cannot sign.
	if code := in.do(t, "POST", "/invitations/"+tokC+"/sign", api.InvitationAction{Consent: true}, nil); code != http.StatusConflict {
		t.Fatalf("approver signing: %d, want 409", code)
	}
	e.waitStatus(t, doc.ID, "pending", time.Minute)
	if n := len(mailsTo(t, mp, "b@example.com")); n != 0 {
		t.Fatalf("b was mailed while c had not approved (%d)", n)
	}

	// C approves: order 1 is done and B is invited.
	if code := in.do(t, "POST", "/invitations/"+tokC+"/approve", api.InvitationAction{Consent: true}, &inv); code != http.StatusOK || inv.State != api.RecipientApproved {
		t.Fatalf("approve: %d %+v", code, inv)
	}
	tokB := tokenFor(t, mp, "b@example.com", "Please sign")
	if code := in.do(t, "POST", "/invitations/"+tokB+"/sign", api.InvitationAction{Consent: true, SignatureData: "Bob B. Signer", Name: "Bob"}, &inv); code != http.StatusOK {
		var e map[string]any
		in.do(t, "GET", "/invitations/"+tokB, nil, &e)
		t.Fatalf("b signs: %d (%s: %v)", code, tokB, e)
	}

	// Complete: signed, then the certificate, then completed.
	testenv.WaitFor(t, "the certificate of completion", func() bool {
		r := in.request(t, req.ID)
		return r.State == api.RequestCompleted && r.CertificateSHA256 != nil
	})
	e.waitStatus(t, doc.ID, "completed", time.Minute)
	final := in.request(t, req.ID)
	for _, rc := range final.Recipients {
		want := map[api.Role]api.RecipientState{api.RoleSigner: api.RecipientSigned, api.RoleApprover: api.RecipientApproved, api.RoleCC: api.RecipientPending}[rc.Role]
		if rc.State != want {
			t.Errorf("recipient %s: %s, want %s", rc.Email, rc.State, want)
		}
		if rc.Role != api.RoleCC && (rc.ConsentAt == nil || rc.IPAddress == nil || rc.ActedAt == nil) {
			t.Errorf("recipient %s: consent, IP or time missing: %+v", rc.Email, rc)
		}
	}
	// The signatures are bound to the pinned hash.
	var sigs []api.Signature
	testenv.Do(t, "GET", in.url+"/documents/"+doc.ID+"/signatures", nil, &sigs)
	if len(sigs) != 2 {
		t.Fatalf("signatures: %d, want 2", len(sigs))
	}
	for _, s := range sigs {
		if s.ContentSHA256 == nil || *s.ContentSHA256 != req.ContentSHA256 {
			t.Fatalf("signature %s not bound to the pinned hash", s.ID)
		}
	}

	// The certificate: hash, recipients and the image, read with poppler.
	resp, err = http.Get(in.url + "/signing-requests/" + req.ID + "/certificate")
	if err != nil {
		t.Fatal(err)
	}
	pdf, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("certificate: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	path := filepath.Join(t.TempDir(), "cert.pdf")
	if err := os.WriteFile(path, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{req.ContentSHA256, "a@example.com", "b@example.com", "c@example.com", "d@example.com", "Bob B. Signer", "Chain head", "alice-browser/1.0", "Lease agreement"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("certificate text lacks %q:\n%s", want, text)
		}
	}
	// Every transition is in the document's audit trail, the chain is
	// valid, and the certificate shows the sealed head.
	trail, err := audit.Read(context.Background(), e.pool, doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range trail.Entries {
		types = append(types, r.Type)
	}
	for _, want := range []string{"signing_request.created", "signing_request.sent", "invitation.sent", "invitation.viewed",
		"recipient.signed", "recipient.approved", "signing_request.completed", "certificate.issued"} {
		if !slices.Contains(types, want) {
			t.Errorf("audit trail lacks %s: %v", want, types)
		}
	}
	if res := audit.Verify(trail, auditKeys()); !res.Valid {
		t.Errorf("audit trail invalid: %+v", res)
	}
	if len(trail.Checkpoints) == 0 || !strings.Contains(string(text), trail.Checkpoints[0].Hash) {
		t.Errorf("certificate lacks the sealed chain head %+v:\n%s", trail.Checkpoints, text)
	}
	images, err := exec.Command("pdfimages", "-list", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(strings.TrimSpace(string(images)), "\n"); lines < 2 { // header, rule, one image
		t.Errorf("certificate holds no image:\n%s", images)
	}

	// The owner and the cc get the document and the certificate.
	for _, addr := range []string{"ebemad@company.com", "d@example.com"} {
		testenv.WaitFor(t, "the completion mail to "+addr, func() bool {
			for _, m := range mailsTo(t, mp, addr) {
				if strings.HasPrefix(m.Subject, "Completed:") && m.Attachments == 2 {
					return true
				}
			}
			return false
		})
	}
	// A completed request keeps its document.
	if resp := testenv.Do(t, "DELETE", e.doc.http.URL+"/documents/"+doc.ID, nil, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("delete a document with a completed request: %d, want 409", resp.StatusCode)
	}
	// The list shows the request.
	var list []api.SigningRequest
	if code := in.do(t, "GET", "/documents/"+doc.ID+"/signing-requests", nil, &list); code != http.StatusOK || len(list) != 1 || list[0].ID != req.ID {
		t.Fatalf("list: %d %+v", code, list)
	}
}

// TestSigningRequestDecline: a decline by a signer declines the request;
// the document keeps its last status and the owner is told.
func TestSigningRequestDecline(t *testing.T) {
	e := newEnv(t)
	mp := startMailpit(t)
	in := e.startWorkflow(t, mp)
	doc := e.createDocument(t, "NDA", "terms")
	var req api.SigningRequest
	if code := in.do(t, "POST", "/documents/"+doc.ID+"/signing-requests", api.CreateSigningRequest{
		Recipients: []api.RecipientInput{{Email: "a@example.com", Role: api.RoleSigner}, {Email: "b@example.com", Role: api.RoleSigner}},
	}, &req); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	tok := tokenFor(t, mp, "a@example.com", "Please sign")
	// b's invitation is read before a declines: a notify job that runs
	// after the decline rightly sends nothing (the request has ended).
	tokB := tokenFor(t, mp, "b@example.com", "Please sign")
	if code := in.do(t, "POST", "/invitations/"+tok+"/decline", api.InvitationAction{Reason: "wrong amount"}, nil); code != http.StatusOK {
		t.Fatalf("decline: %d", code)
	}
	r := in.request(t, req.ID)
	if r.State != api.RequestDeclined || r.Outcome == nil || !strings.Contains(*r.Outcome, "a@example.com") {
		t.Fatalf("after decline: %+v", r)
	}
	if code := in.do(t, "POST", "/invitations/"+tokB+"/sign", api.InvitationAction{Consent: true}, nil); code != http.StatusConflict {
		t.Fatalf("sign a declined request: %d, want 409", code)
	}
	testenv.WaitFor(t, "the decline mail to the owner", func() bool {
		for _, m := range mailsTo(t, mp, "ebemad@company.com") {
			if strings.HasPrefix(m.Subject, "Signing request declined") {
				return true
			}
		}
		return false
	})
	e.waitStatus(t, doc.ID, "viewed", time.Minute)
	// The document is free again: a title change goes through.
	if resp := testenv.Do(t, "PATCH", e.doc.http.URL+"/documents/"+doc.ID, map[string]any{"title": "NDA v2"}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("patch after decline: %d", resp.StatusCode)
	}
}

// TestSigningSchedulerExactlyOnce: two instances share the due-table; one
// stops and a third starts (a restart) while reminders are due; every
// reminder and the expiry are mailed exactly once.
func TestSigningSchedulerExactlyOnce(t *testing.T) {
	e := newEnv(t)
	mp := startMailpit(t)
	a := e.startWorkflow(t, mp)
	b := e.startWorkflow(t, mp)
	doc := e.createDocument(t, "Quote", "price")
	var req api.SigningRequest
	expires := time.Now().Add(6 * time.Second)
	if code := a.do(t, "POST", "/documents/"+doc.ID+"/signing-requests", api.CreateSigningRequest{
		Recipients:       []api.RecipientInput{{Email: "slow@example.com", Role: api.RoleSigner}},
		ExpiresAt:        &expires,
		ReminderInterval: "1s",
	}, &req); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	testenv.WaitFor(t, "a first reminder", func() bool {
		for _, m := range mailsTo(t, mp, "slow@example.com") {
			if strings.HasPrefix(m.Subject, "Reminder") {
				return true
			}
		}
		return false
	})
	a.stop() // a restart: a goes away, c comes up
	c := e.startWorkflow(t, mp)
	testenv.WaitFor(t, "the request to expire", func() bool { return c.request(t, req.ID).State == api.RequestExpired })
	testenv.WaitFor(t, "the expiry mail", func() bool {
		return len(mailsTo(t, mp, "ebemad@company.com")) > 0
	})
	// Nothing is left to run; count what was sent.
	testenv.WaitFor(t, "the due-table to drain", func() bool {
		var n int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM signing.due WHERE request_id = $1`, req.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	var reminders []int
	invites := 0
	for _, m := range mailsTo(t, mp, "slow@example.com") {
		switch {
		case strings.HasPrefix(m.Subject, "Reminder "):
			n, err := strconv.Atoi(strings.TrimSuffix(strings.Fields(m.Subject)[1], ":"))
			if err != nil {
				t.Fatalf("subject %q", m.Subject)
			}
			reminders = append(reminders, n)
		case strings.HasPrefix(m.Subject, "Please sign"):
			invites++
		}
	}
	sort.Ints(reminders)
	if invites != 1 || len(reminders) == 0 {
		t.Fatalf("invitations %d, reminders %v", invites, reminders)
	}
	for i, n := range reminders {
		if n != i+1 {
			t.Fatalf("reminders %v: each must be sent once, in sequence from 1", reminders)
		}
	}
	expiries := 0
	for _, m := range mailsTo(t, mp, "ebemad@company.com") {
		if strings.HasPrefix(m.Subject, "Signing request expired") {
			expiries++
		}
	}
	if expiries != 1 {
		t.Fatalf("expiry mailed %d times, want 1", expiries)
	}
	// An expired request leaves the document in its last status and frees it.
	if got := e.documentStatus(t, doc.ID); got != "sent" {
		t.Fatalf("document after expiry: %s, want sent", got)
	}
	_ = b // b ran jobs beside a and c throughout
}

// TestSigningRequestDraftCancelAndBadInput: a draft sends nothing until
// sent; cancel frees the document; resend mails the waiting recipient
// again with a new link (the old one still works); bad input gets 400,
// 422 naming the field, 404.
func TestSigningRequestDraftCancelAndBadInput(t *testing.T) {
	e := newEnv(t)
	mp := startMailpit(t)
	in := e.startWorkflow(t, mp)
	doc := e.createDocument(t, "Order", "items")
	base := "/documents/" + doc.ID + "/signing-requests"

	for _, c := range []struct {
		body  any
		code  int
		field string
	}{
		{`{"recipients": [`, http.StatusBadRequest, ""},
		{api.CreateSigningRequest{}, http.StatusUnprocessableEntity, "recipients"},
		{api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "nope", Role: api.RoleSigner}}}, http.StatusUnprocessableEntity, "recipients[0].email"},
		{api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "a@example.com", Role: "boss"}}}, http.StatusUnprocessableEntity, "recipients[0].role"},
		{api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "a@example.com", Role: api.RoleCC}}}, http.StatusUnprocessableEntity, "recipients"},
		{api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "a@example.com", Role: api.RoleSigner}}, ReminderInterval: "soon"}, http.StatusUnprocessableEntity, "reminder_interval"},
	} {
		var out struct {
			Error struct {
				Details []struct {
					Field string `json:"field"`
				} `json:"details"`
			} `json:"error"`
		}
		if code := in.do(t, "POST", base, c.body, &out); code != c.code {
			t.Fatalf("%v: %d, want %d", c.body, code, c.code)
		}
		if d := out.Error.Details; c.field != "" && (len(d) == 0 || d[0].Field != c.field) {
			t.Fatalf("%v: details %+v, want field %s", c.body, d, c.field)
		}
	}
	if code := in.do(t, "POST", "/documents/0194f1a2-0000-7000-8000-000000000000/signing-requests",
		api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "a@example.com", Role: api.RoleSigner}}}, nil); code != http.StatusNotFound {
		t.Fatalf("unknown document: %d, want 404", code)
	}
	if code := in.do(t, "GET", "/signing-requests/0194f1a2-0000-7000-8000-000000000000", nil, nil); code != http.StatusNotFound {
		t.Fatalf("unknown request: %d, want 404", code)
	}

	var req api.SigningRequest
	if code := in.do(t, "POST", base, api.CreateSigningRequest{Draft: true,
		Recipients: []api.RecipientInput{{Email: "a@example.com", Role: api.RoleSigner}}}, &req); code != http.StatusCreated || req.State != api.RequestDraft {
		t.Fatalf("draft: %d %+v", code, req)
	}
	// A draft already pins the document.
	if resp := testenv.Do(t, "PATCH", e.doc.http.URL+"/documents/"+doc.ID, map[string]any{"title": "x"}, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("patch a drafted document: %d, want 409", resp.StatusCode)
	}
	if code := in.do(t, "POST", "/signing-requests/"+req.ID+"/send", nil, &req); code != http.StatusOK || req.State != api.RequestSent {
		t.Fatalf("send: %d %+v", code, req)
	}
	if code := in.do(t, "POST", "/signing-requests/"+req.ID+"/send", nil, nil); code != http.StatusConflict {
		t.Fatalf("send twice: %d, want 409", code)
	}
	first := tokenFor(t, mp, "a@example.com", "Please sign")
	if code := in.do(t, "POST", "/signing-requests/"+req.ID+"/resend", nil, nil); code != http.StatusOK {
		t.Fatalf("resend: %d", code)
	}
	testenv.WaitFor(t, "the second invitation", func() bool { return len(mailsTo(t, mp, "a@example.com")) == 2 })
	if code := in.do(t, "GET", "/invitations/"+first, nil, nil); code != http.StatusOK {
		t.Fatalf("the first link after a resend: %d, want 200", code)
	}
	if code := in.do(t, "POST", "/signing-requests/"+req.ID+"/cancel", nil, &req); code != http.StatusOK || req.State != api.RequestCancelled {
		t.Fatalf("cancel: %d %+v", code, req)
	}
	if code := in.do(t, "POST", "/invitations/"+first+"/sign", api.InvitationAction{Consent: true}, nil); code != http.StatusConflict {
		t.Fatalf("sign a cancelled request: %d, want 409", code)
	}
	// Cancelled: the document is free, and its status is the request's last.
	e.waitStatus(t, doc.ID, "viewed", time.Minute)
	if resp := testenv.Do(t, "PATCH", e.doc.http.URL+"/documents/"+doc.ID, map[string]any{"title": "Order v2"}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("patch after cancel: %d", resp.StatusCode)
	}
}
