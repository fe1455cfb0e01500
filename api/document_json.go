package api

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends d as encoding/json (with its default HTML escaping)
// writes it, byte for byte, without reflection: the list writes a hundred
// documents per page, and reflection was a third of its CPU (issue 16).
// TestDocumentAppendJSONIsEncodingJSON and FuzzDocumentAppendJSON hold it
// to encoding/json's output.
func (d *Document) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, d.ID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, d.Title)
	b = append(b, `,"content_type":`...)
	b = appendJSONString(b, d.ContentType)
	b = append(b, `,"content_size":`...)
	b = strconv.AppendInt(b, d.ContentSize, 10)
	b = append(b, `,"s3_key":`...)
	b = appendJSONString(b, d.S3Key)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(d.Status))
	b = append(b, `,"created_by":`...)
	b = appendJSONString(b, d.CreatedBy)
	b = append(b, `,"created_at":`...)
	b = d.CreatedAt.appendJSON(b)
	b = append(b, `,"updated_at":`...)
	b = d.UpdatedAt.appendJSON(b)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(d.Version), 10)
	b = append(b, `,"content_sha256":`...)
	b = appendJSONString(b, d.ContentSHA256)
	if d.Owner != "" {
		b = append(b, `,"owner":`...)
		b = appendJSONString(b, d.Owner)
	}
	if d.SigningStatus != "" {
		b = append(b, `,"signing_status":`...)
		b = appendJSONString(b, string(d.SigningStatus))
	}
	return append(b, '}')
}

// AppendDocumentsJSON appends docs as a JSON array, as json.Encoder's
// Encode writes a []*Document (without its trailing newline).
func AppendDocumentsJSON(b []byte, docs []*Document) []byte {
	b = append(b, '[')
	for i, d := range docs {
		if i > 0 {
			b = append(b, ',')
		}
		if d == nil {
			b = append(b, "null"...)
			continue
		}
		b = d.AppendJSON(b)
	}
	return append(b, ']')
}

// appendJSON is MarshalJSON without its allocations: the digits written
// directly for the years 0–9999 (every timestamptz PostgreSQL stores as a
// document's), time.Format's answer otherwise.
func (t Time) appendJSON(b []byte) []byte {
	u := t.UTC()
	year, month, day := u.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = u.AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	hour, min, sec := u.Clock()
	us := u.Nanosecond() / 1000
	b = append(b, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10), 'Z', '"')
	return b
}

const hexDigits = "0123456789abcdef"

// jsonSafe is the ASCII bytes appendJSONString copies as they are.
var jsonSafe = func() (safe [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return safe
}()

// appendJSONString is encoding/json's string encoding with HTML escaping
// (json.Marshal's and json.Encoder's default): <, >, & and control
// characters as \u00XX (\b \f \n \r \t \" \\ short), invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
