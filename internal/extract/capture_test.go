package extract

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// os/exec copies a child's or a tool's output with io.Copy: the buffers
// cap it through Write (an embedded bytes.Buffer's ReadFrom took it all),
// and a tool's stderr keeps its end and a broken-PDF message wherever it
// came, even split across writes.
func TestOutputIsCappedAsOSExecCopiesIt(t *testing.T) {
	src := strings.Repeat("Syntax Error: x\n", 5000) + "Syntax Error: Loop in Pages tree\n" + strings.Repeat("Syntax Error: y\n", 5000)
	head := &capBuffer{max: 1000}
	if _, err := io.Copy(head, strings.NewReader(src)); err != nil {
		t.Fatal(err)
	}
	if n := len(head.String()); n != 1000 {
		t.Errorf("capBuffer kept %d bytes, want its cap 1000", n)
	}
	tail := &toolStderr{}
	if _, err := io.Copy(tail, iotest.OneByteReader(strings.NewReader(src))); err != nil {
		t.Fatal(err)
	}
	if s := tail.String(); len(s) != stderrCap || !strings.HasSuffix(s, "Syntax Error: y\n") {
		t.Errorf("toolStderr kept %d bytes ending %q, want the last %d", len(s), s[max(0, len(s)-20):], stderrCap)
	}
	if tail.broken == "" {
		t.Error("the loop message in the middle of the stderr was not seen")
	}
}
