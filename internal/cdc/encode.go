package cdc

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/docstream/docstream/internal/change"
)

// unavailable is what Debezium writes for a value PostgreSQL did not send
// (an unchanged TOAST column with no old value to copy it from).
const unavailable = "__debezium_unavailable_value"

// column is one column of a captured table, in table order.
type column struct {
	name string
	oid  uint32
	key  bool // part of the primary key (the event key)
	// skip: an excluded column (Config.ExcludeColumns), never written.
	skip bool
}

// table is what the engine knows about a captured table: from a pgoutput
// Relation message while streaming, from the catalog while snapshotting.
type table struct {
	schema, name string
	topic        string
	cols         []column
}

// value is one column value as text (pgoutput's and our snapshot's format);
// null and toast (unchanged, not sent) are flags.
type value struct {
	text  []byte
	null  bool
	toast bool
}

// appendRow writes the row object {"col":value,…} in table column order.
func appendRow(b []byte, t *table, vals []value) []byte {
	b = append(b, '{')
	first := true
	for i, c := range t.cols {
		if c.skip {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, c.name)
		b = append(b, ':')
		var v value
		if i < len(vals) {
			v = vals[i]
		} else {
			v.null = true // a column the tuple predates
		}
		b = appendValue(b, c.oid, v)
	}
	return append(b, '}')
}

// appendKey writes the event key: {"id":…} (the primary key columns).
func appendKey(b []byte, t *table, vals []value) []byte {
	b = append(b, '{')
	first := true
	for i, c := range t.cols {
		if !c.key || i >= len(vals) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, c.name)
		b = append(b, ':')
		b = appendValue(b, c.oid, vals[i])
	}
	return append(b, '}')
}

// appendValue encodes one column as Debezium's JSON converter does for the
// types docstream uses: numbers for integers, ISO-8601 UTC with
// microseconds for timestamptz, base64 for bytea, strings otherwise. It
// allocates nothing on the common paths: it runs for every column of every
// captured row.
func appendValue(b []byte, oid uint32, v value) []byte {
	switch {
	case v.null:
		return append(b, "null"...)
	case v.toast:
		return appendString(b, unavailable)
	}
	s := v.text
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		return append(b, s...)
	case pgtype.Float4OID, pgtype.Float8OID:
		if _, err := strconv.ParseFloat(string(s), 64); err == nil {
			return append(b, s...)
		}
		return appendString(b, s) // NaN, Infinity
	case pgtype.BoolOID:
		if len(s) > 0 && s[0] == 't' {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case pgtype.TimestamptzOID:
		if out, ok := appendUTCTimestamp(b, s); ok {
			return out
		}
		if t, ok := parseTimestamptz(string(s)); ok {
			b = append(b, '"')
			b = t.UTC().AppendFormat(b, change.TimeLayout)
			return append(b, '"')
		}
		return appendString(b, s) // infinity, BC dates
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID:
		if out, ok := appendTextArray(b, oid, s); ok {
			return out
		}
	case pgtype.IntervalOID:
		if us, ok := intervalMicros(s); ok {
			return strconv.AppendInt(b, us, 10)
		}
	case pgtype.ByteaOID:
		if raw, err := hex.AppendDecode(nil, bytes.TrimPrefix(s, []byte(`\x`))); err == nil {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			return append(b, '"')
		}
	}
	return appendString(b, s)
}

// intervalMicros is an interval as Debezium writes it by default
// (interval.handling.mode=numeric): microseconds, a month counted as its
// average length (365.25/12 days), as io.debezium.time.MicroDuration does.
func intervalMicros(s []byte) (int64, bool) {
	var iv pgtype.Interval
	if err := iv.Scan(string(s)); err != nil || !iv.Valid {
		return 0, false
	}
	const day = int64(24 * time.Hour / time.Microsecond)
	return iv.Microseconds + int64(iv.Days)*day + int64(float64(iv.Months)*365.25/12*float64(day)), true
}

// appendTextArray encodes a text[] (documents.readers) as a JSON array of
// strings, as Debezium does. A fresh pgtype.Map per call: a Map is not safe
// for concurrent use, and arrays are rare in the captured tables.
func appendTextArray(b []byte, oid uint32, s []byte) ([]byte, bool) {
	var elems []pgtype.Text
	if err := pgtype.NewMap().Scan(oid, pgtype.TextFormatCode, s, &elems); err != nil {
		return b, false
	}
	b = append(b, '[')
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		if !e.Valid {
			b = append(b, "null"...)
			continue
		}
		b = appendString(b, e.String)
	}
	return append(b, ']'), true
}

// appendUTCTimestamp is the fast path for what the replication session
// (TimeZone=UTC) sends for a timestamptz: "2006-01-02 15:04:05[.ffffff]+00".
// That is already UTC, so the envelope's form (change.TimeLayout:
// "2006-01-02T15:04:05.000000Z") is the same digits with the fraction padded
// to six: rewriting the bytes gives exactly what parsing and formatting
// would, without the cost (time.Parse showed in the capture profile).
// Anything else (another offset, a year past 9999, BC, infinity) reports
// false and takes the general path.
func appendUTCTimestamp(b, s []byte) ([]byte, bool) {
	const date = len("2006-01-02 15:04:05")
	if len(s) < date+3 || string(s[len(s)-3:]) != "+00" {
		return b, false
	}
	for i, c := range s[:date] {
		switch i {
		case 4, 7:
			if c != '-' {
				return b, false
			}
		case 10:
			if c != ' ' {
				return b, false
			}
		case 13, 16:
			if c != ':' {
				return b, false
			}
		default:
			if c < '0' || c > '9' {
				return b, false
			}
		}
	}
	frac := s[date : len(s)-3]
	if len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 7 || frac[0] != '.' {
			return b, false
		}
		for _, c := range frac[1:] {
			if c < '0' || c > '9' {
				return b, false
			}
		}
		frac = frac[1:]
	}
	b = append(b, '"')
	b = append(b, s[:10]...)
	b = append(b, 'T')
	b = append(b, s[11:date]...)
	b = append(b, '.')
	b = append(b, frac...)
	b = append(b, "000000"[len(frac):]...)
	return append(b, 'Z', '"'), true
}

// parseTimestamptz reads PostgreSQL's ISO text output (the replication and
// snapshot sessions run with TimeZone=UTC, but any offset is accepted).
func parseTimestamptz(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// appendString writes s as a JSON string the way Jackson (Debezium's JSON
// converter) does: only quote, backslash and control characters escaped;
// <, >, &, U+2028 and U+2029 are left as they are, which encoding/json
// would not do, and the bytes must match the reference's. It takes column
// bytes as they are, so encoding a row converts nothing to string.
func appendString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			// One rune at most UTFMax bytes long, copied so both string and
			// []byte input decode without a conversion.
			var rb [utf8.UTFMax]byte
			n := copy(rb[:], s[i:])
			r, size := utf8.DecodeRune(rb[:n])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, rb[:size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		default:
			const hexdig = "0123456789ABCDEF"
			b = append(b, '\\', 'u', '0', '0', hexdig[c>>4], hexdig[c&0xF])
		}
		i++
	}
	return append(b, '"')
}

// envelope is one change ready to encode.
type envelope struct {
	op         string
	before     []value // nil: null
	after      []value
	source     change.Source
	producedMs int64
}

// appendEnvelope writes the Debezium value. Field order is the contract's
// (contracts/cdc-events.md).
func appendEnvelope(b []byte, t *table, e *envelope) []byte {
	b = append(b, `{"before":`...)
	if e.before == nil {
		b = append(b, "null"...)
	} else {
		b = appendRow(b, t, e.before)
	}
	b = append(b, `,"after":`...)
	if e.after == nil {
		b = append(b, "null"...)
	} else {
		b = appendRow(b, t, e.after)
	}
	b = append(b, `,"source":`...)
	b = appendSource(b, &e.source)
	b = append(b, `,"op":`...)
	b = appendString(b, e.op)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, e.producedMs, 10)
	return append(b, `,"transaction":null}`...)
}

// appendSource writes change.Source with its JSON field names and order
// (by hand: reflection-based encoding showed in the capture profile).
func appendSource(b []byte, s *change.Source) []byte {
	b = append(b, `{"version":`...)
	b = appendString(b, s.Version)
	b = append(b, `,"connector":`...)
	b = appendString(b, s.Connector)
	b = append(b, `,"name":`...)
	b = appendString(b, s.Name)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, s.TsMs, 10)
	b = append(b, `,"snapshot":`...)
	b = appendString(b, s.Snapshot)
	b = append(b, `,"db":`...)
	b = appendString(b, s.DB)
	b = append(b, `,"sequence":`...)
	b = appendString(b, s.Sequence)
	b = append(b, `,"schema":`...)
	b = appendString(b, s.Schema)
	b = append(b, `,"table":`...)
	b = appendString(b, s.Table)
	b = append(b, `,"txId":`...)
	b = strconv.AppendInt(b, s.TxID, 10)
	b = append(b, `,"lsn":`...)
	b = strconv.AppendUint(b, s.LSN, 10)
	b = append(b, `,"xmin":`...)
	if s.Xmin == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *s.Xmin, 10)
	}
	return append(b, '}')
}

// sequence is source.sequence: a JSON array of two strings or nulls (the
// last commit LSN and this change's LSN), itself as a string.
func sequence(lastCommit, lsn uint64) string {
	var a [64]byte // room for both LSNs: one allocation, the string
	b := append(a[:0], '[')
	if lastCommit == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = strconv.AppendUint(b, lastCommit, 10)
		b = append(b, '"')
	}
	b = append(b, ',', '"')
	b = strconv.AppendUint(b, lsn, 10)
	b = append(b, '"', ']')
	return string(b)
}
