#!/usr/bin/env python3
"""Independent verifier of a docstream audit trail.

Written apart from the Go code (internal/audit) so that a mistake in one is
not silently shared by the other: its own RFC 8785 (JCS) canonicalisation,
hashlib's SHA-256 and Debian's python3-cryptography for Ed25519.

    verify_audit.py EXPORT.json KEYS.json   # exit 0 only when valid
    verify_audit.py --self-test JCS_DIR     # the RFC 8785 test vectors

EXPORT.json is GET /documents/{id}/audit; KEYS.json is
GET /.well-known/docstream-audit-keys. Prints one JSON line:
{"valid": bool, "entries": n, "first_broken": seq or null, "reason": ...}.
"""
import base64
import hashlib
import json
import math
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ZERO = "0" * 64


def _number(x):
    """ECMAScript Number.prototype.toString of a double (RFC 8785 3.2.2.3)."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int):
        x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and Infinity are not JSON")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _number(-x)
    # repr gives the shortest round-tripping digits; re-lay them out the
    # way ECMAScript does.
    r = repr(x)
    if "e" in r:
        mant, exp = r.split("e")
        exp = int(exp)
    else:
        mant, exp = r, 0
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    if fp == "0":
        fp = ""
    digits = (ip + fp).lstrip("0")
    # n: position of the decimal point relative to the digits' start
    n = len(ip.lstrip("0")) + exp if ip.strip("0") else exp - (len(fp) - len(fp.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    m = digits[0] + ("." + digits[1:] if k > 1 else "")
    return m + "e" + sign + str(abs(e))


def _string(s):
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _utf16_key(s):
    return s.encode("utf-16-be")


def canonical(v):
    """RFC 8785 canonical form of a parsed JSON value, as str."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return _number(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v.keys(), key=_utf16_key)
        return "{" + ",".join(_string(k) + ":" + canonical(v[k]) for k in keys) + "}"
    raise TypeError("not JSON: %r" % (v,))


def jcs(v):
    return canonical(v).encode("utf-8")


def entry_hash(e):
    body = {
        "v": 1, "document_id": e["document_id"], "seq": e["seq"], "type": e["type"], "actor": e["actor"],
        "at": e["at"], "ip": e["ip"], "user_agent": e["user_agent"], "data": e["data"],
        "prev_hash": e["prev_hash"], "key_id": e["key_id"],
    }
    return hashlib.sha256(jcs(body)).hexdigest()


def key_id(raw):
    return hashlib.sha256(raw).hexdigest()[:16]


def check_signature(cp, keys):
    # An unsigned head proves nothing about the newest entries (anyone who
    # can write the table can delete one and write a head naming the one
    # before), so it is refused like a bad signature.
    if not cp.get("signature"):
        return "unsigned"
    pub = keys.get(cp["key_id"])
    if pub is None:
        return "unknown key %s" % cp["key_id"]
    msg = jcs({
        "v": 1, "purpose": "docstream-audit-checkpoint", "document_id": cp["document_id"], "seq": cp["seq"],
        "hash": cp["hash"], "key_id": cp["key_id"], "signed_at": cp["signed_at"],
    })
    try:
        pub.verify(base64.b64decode(cp["signature"]), msg)
    except (InvalidSignature, ValueError):
        return "bad signature"
    return None


def verify(log, keyset):
    keys = {}
    for k in keyset.get("keys", []):
        raw = base64.b64decode(k["public_key"])
        if k.get("algorithm") != "Ed25519" or len(raw) != 32 or key_id(raw) != k["key_id"]:
            return False, None, "malformed key %s" % k.get("key_id")
        keys[k["key_id"]] = Ed25519PublicKey.from_public_bytes(raw)
    entries = sorted(log["entries"], key=lambda e: e["seq"])
    prev = ZERO
    for i, e in enumerate(entries):
        want = i + 1
        if e["seq"] != want:
            return False, want, "entry %d missing" % want
        if e["document_id"] != log["document_id"]:
            return False, want, "entry of another document"
        if entry_hash(e) != e["hash"]:
            return False, want, "hash mismatch"
        if e["prev_hash"] != prev:
            return False, want, "prev_hash mismatch"
        if e["type"] == "audit.continued_from_unverified_head":
            # The server extended a head it could not verify: valid only if
            # that head names the entry before and verifies with these keys.
            h = (e["data"] or {}).get("head") or {}
            if h.get("document_id") != log["document_id"] or h.get("seq") != want - 1 or h.get("hash") != prev:
                return False, want, "continued from a head that is not the entry before"
            why = check_signature(h, keys)
            if why:
                return False, want, "continued from a head that does not verify: " + why
        prev = e["hash"]
    head = log.get("head")
    if head is None:
        return (not entries), (len(entries) or None), "no head"
    last = entries[-1] if entries else None
    last_seq = last["seq"] if last else 0
    if head["seq"] != last_seq:
        return False, min(head["seq"], last_seq) + 1, "head at %d, trail ends at %d" % (head["seq"], last_seq)
    if last and head["hash"] != last["hash"]:
        return False, last_seq, "head hash mismatch"
    if head["document_id"] != log["document_id"]:
        return False, head["seq"], "head of another document"
    why = check_signature(head, keys)
    if why:
        return False, head["seq"], "head: " + why
    by_seq = {e["seq"]: e for e in entries}
    for cp in log.get("checkpoints") or []:
        e = by_seq.get(cp["seq"])
        if cp["document_id"] != log["document_id"] or e is None or e["hash"] != cp["hash"]:
            return False, cp["seq"], "checkpoint does not match"
        w = check_signature(cp, keys)
        if w:
            return False, cp["seq"], "checkpoint: " + w
    keyids = sorted({e["key_id"] for e in entries if e["key_id"]})
    return True, None, "valid (signed; entries by key %s)" % ", ".join(keyids)


def self_test(directory):
    names = sorted(f[: -len(".input.json")] for f in os.listdir(directory) if f.endswith(".input.json"))
    failed = 0
    for n in names:
        with open(os.path.join(directory, n + ".input.json"), encoding="utf-8") as f:
            v = json.load(f)
        with open(os.path.join(directory, n + ".expected.json"), "rb") as f:
            want = f.read()
        got = jcs(v)
        if got != want:
            failed += 1
            print("FAIL %s\n got %r\nwant %r" % (n, got, want))
    print("%d passed, %d failed" % (len(names) - failed, failed))
    return 1 if failed or not names else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        log = json.load(f)
    with open(argv[2], encoding="utf-8") as f:
        keyset = json.load(f)
    # A crafted or truncated export (a field missing or of the wrong type)
    # is invalid, said as such, not a traceback.
    try:
        valid, seq, reason = verify(log, keyset)
        entries = len(log["entries"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        valid, seq, reason, entries = False, None, "malformed export: %s %s" % (type(e).__name__, e), None
    print(json.dumps({"valid": valid, "entries": entries, "first_broken": seq, "reason": reason}))
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
