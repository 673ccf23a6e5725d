#!/usr/bin/python3
"""check_cbor.py - checks kvs segment and hint files with cbor2,
independently of the engine's own codec: the header item, the shape of every
record, each record's CRC32C and the footer's count and chain; for a hint
file its layout and CRC32C, and (for a DIR) that its entries are exactly the
records of its segment.

usage: check_cbor.py DIR|FILE...

A DIR stands for its files named NNNNNNNNNN.seg, in ascending order, and then
its NNNNNNNNNN.hint files.  A FILE is a segment or a hint file (told apart by
its header).  Prints "N files, M records, F footers" (segments only; M counts
every record but the footers), then "H hint files, E entries" if there were hint
files, and exits 0; or prints the first problem as "FILE: offset N: what"
and exits 1.  A DIR's hint file without its segment is only a warning.
"""

import io
import os
import re
import stat
import sys

import cbor2

MAGIC_TAG = 55800  # RFC 9277: CBOR Sequence with a leading tag
FORMAT_TAG = 0x6B767331  # "kvs1"
HINT_TAG = 0x6B766831  # "kvh1"
HEADER_LEN = 12
OP_SET, OP_REMOVE, OP_FOOTER, OP_TXN, OP_FLUSH, OP_SETX = 0, 1, 2, 3, 4, 5
# items of a record of each op
RECORD_ITEMS = {OP_SET: 5, OP_REMOVE: 4, OP_FOOTER: 5, OP_TXN: 4, OP_FLUSH: 3, OP_SETX: 6}
SEGMENT_NAME = re.compile(r"^[0-9]{10}\.seg$")
HINT_NAME = re.compile(r"^[0-9]{10}\.hint$")


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), continuing from `crc` like the engine's."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Bad(Exception):
    """A problem at an offset of the file being checked."""

    def __init__(self, offset, what):
        super().__init__(what)
        self.offset = offset
        self.what = what


def is_uint(x):
    # bool is a subclass of int in Python; CBOR true/false is no integer.
    return type(x) is int and x >= 0


def is_u32_field(raw, x):
    """A uint32 written in its fixed 5-byte form (1a + 4 bytes), as the
    format requires for crc and chain; `raw` ends with that field."""
    return len(raw) >= 5 and raw[-5] == 0x1A and is_uint(x) and x < 1 << 32


def check_record(rec, raw, off):
    """Check one decoded record against the documented shapes:
        SET     [seq, 0, key: bstr, value: bstr, crc: uint32]
        REMOVE  [seq, 1, key: bstr, crc: uint32]
        FOOTER  [last_seq, 2, count, chain: uint32, crc: uint32]
        TXN     [seq, 3, count, crc: uint32]
        FLUSH   [seq, 4, crc: uint32]
        SETX    [seq, 5, expire_ms, key: bstr, value: bstr, crc: uint32]
    and its crc (over every byte before the crc field).  Returns the op."""
    if type(rec) is not list or not 0x83 <= raw[0] <= 0x86:
        raise Bad(off, "not a record (expected a definite array of 3 to 6 items)")
    if len(rec) < 2 or not is_uint(rec[0]) or type(rec[1]) is not int \
            or rec[1] not in RECORD_ITEMS:
        raise Bad(off, "bad sequence number or record type")
    op = rec[1]
    want = RECORD_ITEMS[op]
    if len(rec) != want:
        raise Bad(off, "op %d record has %d items, expected %d" % (op, len(rec), want))
    if op == OP_FOOTER:
        if not is_uint(rec[2]):
            raise Bad(off, "footer count is not an unsigned integer")
        # the chain is the 5-byte field just before the crc's 5 bytes
        if not is_u32_field(raw[:-5], rec[3]):
            raise Bad(off, "footer chain is not a 5-byte uint32")
    elif op == OP_TXN:
        if not is_uint(rec[2]):
            raise Bad(off, "transaction count is not an unsigned integer")
    elif op != OP_FLUSH:
        at = 2
        if op == OP_SETX:
            if not is_uint(rec[2]) or not 1 <= rec[2] < 1 << 63:
                raise Bad(off, "expiry time is not a positive int64")
            at = 3
        key = rec[at]
        if type(key) is not bytes or not 1 <= len(key) <= 1 << 20:
            raise Bad(off, "key is not a byte string of 1..1 MiB")
        if op in (OP_SET, OP_SETX) and type(rec[at + 1]) is not bytes:
            raise Bad(off, "value is not a byte string")
        if op in (OP_SET, OP_SETX) and not raw[:-5].endswith(rec[at + 1]):
            raise Bad(off, "the value does not end 5 bytes before the record")
    crc = rec[-1]
    if not is_u32_field(raw, crc):
        raise Bad(off, "checksum field is not a 5-byte uint32")
    got = crc32c(raw[:-5])
    if got != crc:
        raise Bad(off, "checksum mismatch (stored %08x, computed %08x)" % (crc, got))
    return op


class Items:
    """The CBOR items of one file, read from memory (so that a garbage
    length cannot make cbor2 allocate it), with their raw bytes."""

    def __init__(self, path):
        # open() of a FIFO would wait for a writer: look first.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise Bad(0, "not a regular file")
        with open(path, "rb") as f:
            self.data = f.read()
        self.size = len(self.data)
        self.fp = io.BytesIO(self.data)
        self.dec = cbor2.CBORDecoder(self.fp)

    def tell(self):
        return self.fp.tell()

    def item(self):
        """The next item and its raw bytes."""
        off = self.fp.tell()
        try:
            x = self.dec.decode()
        except cbor2.CBORDecodeEOF:
            raise Bad(off, "truncated item")
        except Exception as e:  # CBORDecodeError, RecursionError, ...
            raise Bad(off, "does not decode: %s" % e)
        return x, self.data[off:self.fp.tell()]


def header_kind(items):
    """Checks the 12-byte header item: 'segment' (kvs1) or 'hint' (kvh1)."""
    if items.size == 0:
        raise Bad(0, "empty file (no header)")
    head, raw = items.item()
    if isinstance(head, cbor2.CBORTag) and head.tag == MAGIC_TAG \
            and isinstance(head.value, cbor2.CBORTag) \
            and head.value.value == b"BOR" and len(raw) == HEADER_LEN:
        if head.value.tag == FORMAT_TAG:
            return "segment"
        if head.value.tag == HINT_TAG:
            return "hint"
    raise Bad(0, "not a kvs segment (bad header %s)" % repr(head)[:60])


class Segment:
    """What a good segment holds: per record but the footer (offset,
    length, seq, op, key, value length or TXN count, expiry), the footer's
    offset (None: not sealed)."""

    def __init__(self):
        self.recs = []
        self.footers = 0
        self.footer_off = None


def check_segment(items):
    seg = Segment()
    chain = 0  # CRC32C over the crc fields of the records so far
    last_seq = None
    while True:
        off = items.tell()
        if off == items.size:
            return seg
        if seg.footers:
            raise Bad(off, "data after the footer")
        rec, raw = items.item()
        op = check_record(rec, raw, off)
        if op == OP_FOOTER:
            if rec[2] != len(seg.recs) or rec[3] != chain or \
                    (seg.recs and rec[0] != last_seq):
                raise Bad(off, "footer (last_seq %d, count %d, chain %08x) does "
                          "not match the %d records before it" %
                          (rec[0], rec[2], rec[3], len(seg.recs)))
            seg.footers += 1
            seg.footer_off = off
        else:
            key, vlen, expire = b"", 0, 0
            if op in (OP_SET, OP_REMOVE):
                key = rec[2]
            if op == OP_SET:
                vlen = len(rec[3])
            elif op == OP_SETX:
                expire, key, vlen = rec[2], rec[3], len(rec[4])
            elif op == OP_TXN:
                vlen = rec[2]
            seg.recs.append((off, len(raw), rec[0], op, key, vlen, expire))
            last_seq = rec[0]
            chain = crc32c(raw[-4:], chain)


class Hint:
    """What a good hint file holds: its meta item's fields, and per entry
    its offset in the hint file and (offset, rec_len, seq, op, key, vlen)
    in the order of Segment.recs."""

    def __init__(self, count, footer_off, min_seq):
        self.count, self.footer_off, self.min_seq = count, footer_off, min_seq
        self.entries = []


def check_hint(items):
    """Checks the documented layout:
        header  tag 55800(tag 0x6b766831(h'BOR'))
        meta    [count, footer_off, min_seq]
        entry   [seq, type, key: bstr, offset, rec_len, vlen]   (count of them)
                type 0 SET, 1 REMOVE, 3 TXN (vlen: its count, key h''),
                4 FLUSH (key h''); a SETX's entry is [seq, 5, key, offset,
                rec_len, vlen, expire_ms]
        crc     uint32 (5 bytes): CRC32C of every byte before it
    and that the entries describe records in file order that fit before the
    footer, with min_seq their lowest seq."""
    off = items.tell()
    meta, raw = items.item()
    if type(meta) is not list or raw[0] != 0x83 or not all(map(is_uint, meta)):
        raise Bad(off, "bad meta item (expected [count, footer_off, min_seq])")
    hint = Hint(*meta)
    if hint.footer_off < HEADER_LEN:
        raise Bad(off, "footer_off %d is inside the segment's header" % hint.footer_off)
    end = HEADER_LEN  # where the previous entry's record ends
    for i in range(hint.count):
        off = items.tell()
        if off >= items.size - 5:
            raise Bad(off, "the file ends after %d of %d entries" % (i, hint.count))
        e, raw = items.item()
        if type(e) is not list or raw[0] not in (0x86, 0x87):
            raise Bad(off, "not a hint entry (expected a definite array of 6 or 7 items)")
        if len(e) < 2 or type(e[1]) is not int or \
                len(e) != (7 if e[1] == OP_SETX else 6):
            raise Bad(off, "bad record type or item count")
        seq, op, key, rec_off, rec_len, vlen = e[:6]
        expire = e[6] if op == OP_SETX else 0
        if not is_uint(seq) or op not in (OP_SET, OP_REMOVE, OP_TXN, OP_FLUSH, OP_SETX):
            raise Bad(off, "bad sequence number or record type")
        keyed = op in (OP_SET, OP_REMOVE, OP_SETX)
        if type(key) is not bytes or not (1 <= len(key) <= 1 << 20 if keyed else len(key) == 0):
            raise Bad(off, "key is not a byte string of 1..1 MiB (or empty for TXN and FLUSH)")
        if op == OP_SETX and not (is_uint(expire) and 1 <= expire < 1 << 63):
            raise Bad(off, "expiry time is not a positive int64")
        if not (is_uint(rec_off) and is_uint(rec_len) and is_uint(vlen)):
            raise Bad(off, "offset, length or value length is not an unsigned integer")
        if rec_off < end or rec_off + rec_len > hint.footer_off:
            raise Bad(off, "record at offset %d (%d bytes) is out of order or "
                      "not before the footer at %d" % (rec_off, rec_len, hint.footer_off))
        if op in (OP_REMOVE, OP_FLUSH) and vlen != 0 or \
                op in (OP_SET, OP_SETX) and vlen >= rec_len:
            raise Bad(off, "value length %d does not fit a %d-byte record" % (vlen, rec_len))
        end = rec_off + rec_len
        hint.entries.append((off, (rec_off, rec_len, seq, op, key, vlen, expire)))
    if hint.entries and hint.min_seq != min(e[1][2] for e in hint.entries):
        raise Bad(HEADER_LEN, "min_seq %d is not the lowest seq of the entries"
                  % hint.min_seq)
    off = items.tell()
    crc, raw = items.item()
    if len(raw) != 5 or not is_u32_field(raw, crc):
        raise Bad(off, "expected the checksum, a 5-byte uint32")
    got = crc32c(items.data[:off])
    if got != crc:
        raise Bad(off, "checksum mismatch (stored %08x, computed %08x)" % (crc, got))
    if items.tell() != items.size:
        raise Bad(items.tell(), "data after the checksum")
    return hint


FIELDS = ("offset", "length", "seq", "op", "key", "value length or count", "expiry")


def match_hint(hint, seg, seg_path):
    """A hint must list exactly its segment's records, in order."""
    if seg.footer_off is None:
        raise Bad(0, "%s is not sealed" % seg_path)
    if hint.footer_off != seg.footer_off:
        raise Bad(HEADER_LEN, "footer_off %d, but the footer of %s is at %d"
                  % (hint.footer_off, seg_path, seg.footer_off))
    if hint.count != len(seg.recs):
        raise Bad(HEADER_LEN, "count %d, but %s has %d records"
                  % (hint.count, seg_path, len(seg.recs)))
    for (off, e), r in zip(hint.entries, seg.recs):
        for name, want, got in zip(FIELDS, r, e):
            if want != got:
                raise Bad(off, "entry for offset %d: %s differs from the record "
                          "of %s at offset %d" % (e[0], name, seg_path, r[0]))


def check_file(path, want=None):
    """Returns a good file's Segment or Hint, or raises Bad / OSError.
    want: 'segment' or 'hint' if the file's name says which it must be."""
    items = Items(path)
    kind = header_kind(items)
    if want and kind != want:
        raise Bad(0, "a %s file named as a %s file" % (kind, want))
    return check_segment(items) if kind == "segment" else check_hint(items)


def dir_files(arg):
    """A DIR's segments, then its hint files, each list ascending."""
    names = os.listdir(arg)
    segs = sorted(n for n in names if SEGMENT_NAME.match(n))
    hints = sorted(n for n in names if HINT_NAME.match(n))
    return [(os.path.join(arg, n), "segment") for n in segs] + \
           [(os.path.join(arg, n), "hint") for n in hints]


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    files = records = footers = hints = entries = 0
    for arg in argv[1:]:
        try:
            is_dir = os.path.isdir(arg)
            paths = dir_files(arg) if is_dir else [(arg, None)]
        except OSError as e:
            print("check_cbor: %s: %s" % (arg, e.strerror), file=sys.stderr)
            return 1
        segs = {}  # this DIR's segments, for its hint files
        for path, want in paths:
            try:
                got = check_file(path, want)
                if is_dir and isinstance(got, Hint):
                    seg_path = path[:-len(".hint")] + ".seg"
                    if seg_path in segs:
                        match_hint(got, segs[seg_path], seg_path)
                    else:
                        print("check_cbor: warning: %s: its segment is missing"
                              % path, file=sys.stderr)
            except Bad as e:
                print("check_cbor: %s: offset %d: %s" % (path, e.offset, e.what),
                      file=sys.stderr)
                return 1
            except OSError as e:
                print("check_cbor: %s: %s" % (path, e.strerror), file=sys.stderr)
                return 1
            if isinstance(got, Hint):
                hints += 1
                entries += len(got.entries)
            else:
                if is_dir:
                    segs[path] = got
                files += 1
                records += len(got.recs)
                footers += got.footers
    print("%d files, %d records, %d footers" % (files, records, footers))
    if hints:
        print("%d hint files, %d entries" % (hints, entries))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
