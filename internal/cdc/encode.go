package cdc

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
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
	for i, c := range t.cols {
		if i > 0 {
			b = append(b, ',')
		}
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
// microseconds for timestamptz, base64 for bytea, strings otherwise.
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
		return appendString(b, string(s)) // NaN, Infinity
	case pgtype.BoolOID:
		if len(s) > 0 && s[0] == 't' {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case pgtype.TimestamptzOID:
		if t, ok := parseTimestamptz(string(s)); ok {
			return appendString(b, change.FormatTime(t))
		}
		return appendString(b, string(s)) // infinity, BC dates
	case pgtype.ByteaOID:
		if raw, err := hex.DecodeString(strings.TrimPrefix(string(s), `\x`)); err == nil {
			return appendString(b, base64.StdEncoding.EncodeToString(raw))
		}
	}
	return appendString(b, string(s))
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
// would not do, and the bytes must match the reference's.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
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
	var b strings.Builder
	b.WriteByte('[')
	if lastCommit == 0 {
		b.WriteString("null")
	} else {
		b.WriteString(`"` + strconv.FormatUint(lastCommit, 10) + `"`)
	}
	b.WriteString(`,"` + strconv.FormatUint(lsn, 10) + `"]`)
	return b.String()
}
