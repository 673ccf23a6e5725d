#!/usr/bin/python3
"""check_cbor.py - checks kvs segment files with cbor2, independently of the
engine's own codec: the header item, the shape of every record, each record's
CRC32C and the footer's count and chain.

usage: check_cbor.py DIR|SEGMENT...

A DIR stands for its files named NNNNNNNNNN.seg, in ascending order.  Prints
"N files, M records, F footers" (M counts SET and REMOVE records) and exits 0,
or prints the first problem as "FILE: offset N: what" and exits 1.
"""

import io
import os
import re
import stat
import sys

import cbor2

MAGIC_TAG = 55800  # RFC 9277: CBOR Sequence with a leading tag
FORMAT_TAG = 0x6B767331  # "kvs1"
OP_SET, OP_REMOVE, OP_FOOTER = 0, 1, 2
SEGMENT_NAME = re.compile(r"^[0-9]{10}\.seg$")


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
    and its crc (over every byte before the crc field).  Returns the op."""
    if type(rec) is not list or raw[0] not in (0x84, 0x85):
        raise Bad(off, "not a record (expected a definite array of 4 or 5 items)")
    if len(rec) < 2 or not is_uint(rec[0]) or type(rec[1]) is not int \
            or rec[1] not in (OP_SET, OP_REMOVE, OP_FOOTER):
        raise Bad(off, "bad sequence number or record type")
    op = rec[1]
    want = 4 if op == OP_REMOVE else 5
    if len(rec) != want:
        raise Bad(off, "op %d record has %d items, expected %d" % (op, len(rec), want))
    if op == OP_FOOTER:
        if not is_uint(rec[2]):
            raise Bad(off, "footer count is not an unsigned integer")
        # the chain is the 5-byte field just before the crc's 5 bytes
        if not is_u32_field(raw[:-5], rec[3]):
            raise Bad(off, "footer chain is not a 5-byte uint32")
    else:
        key = rec[2]
        if type(key) is not bytes or not 1 <= len(key) <= 1 << 20:
            raise Bad(off, "key is not a byte string of 1..1 MiB")
        if op == OP_SET and type(rec[3]) is not bytes:
            raise Bad(off, "value is not a byte string")
    crc = rec[-1]
    if not is_u32_field(raw, crc):
        raise Bad(off, "checksum field is not a 5-byte uint32")
    got = crc32c(raw[:-5])
    if got != crc:
        raise Bad(off, "checksum mismatch (stored %08x, computed %08x)" % (crc, got))
    return op


def check_file(path):
    """Returns (records, footers) of a good file, or raises Bad / OSError."""
    # open() of a FIFO would wait for a writer: look first.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise Bad(0, "not a regular file")
    with open(path, "rb") as f:
        data = f.read()
    # From memory, so that a garbage length cannot make cbor2 allocate it.
    fp = io.BytesIO(data)
    dec = cbor2.CBORDecoder(fp)
    size = len(data)

    def item(off):
        try:
            x = dec.decode()
        except cbor2.CBORDecodeEOF:
            raise Bad(off, "truncated item")
        except Exception as e:  # CBORDecodeError, RecursionError, ...
            raise Bad(off, "does not decode: %s" % e)
        return x, data[off:fp.tell()]

    if size == 0:
        raise Bad(0, "empty file (no header)")
    head, _ = item(0)
    if not (isinstance(head, cbor2.CBORTag) and head.tag == MAGIC_TAG
            and isinstance(head.value, cbor2.CBORTag)
            and head.value.tag == FORMAT_TAG and head.value.value == b"BOR"):
        raise Bad(0, "not a kvs segment (bad header %s)" % repr(head)[:60])

    records = footers = 0
    chain = 0  # CRC32C over the crc fields of the records so far
    last_seq = None
    while True:
        off = fp.tell()
        if off == size:
            return records, footers
        if footers:
            raise Bad(off, "data after the footer")
        rec, raw = item(off)
        op = check_record(rec, raw, off)
        if op == OP_FOOTER:
            if rec[2] != records or rec[3] != chain or \
                    (records and rec[0] != last_seq):
                raise Bad(off, "footer (last_seq %d, count %d, chain %08x) does "
                          "not match the %d records before it" %
                          (rec[0], rec[2], rec[3], records))
            footers += 1
        else:
            records += 1
            last_seq = rec[0]
            chain = crc32c(raw[-4:], chain)


def segment_files(arg):
    if not os.path.isdir(arg):
        return [arg]
    names = sorted(n for n in os.listdir(arg) if SEGMENT_NAME.match(n))
    return [os.path.join(arg, n) for n in names]


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    files = records = footers = 0
    for arg in argv[1:]:
        try:
            paths = segment_files(arg)
        except OSError as e:
            print("check_cbor: %s: %s" % (arg, e.strerror), file=sys.stderr)
            return 1
        for path in paths:
            try:
                r, f = check_file(path)
            except Bad as e:
                print("check_cbor: %s: offset %d: %s" % (path, e.offset, e.what),
                      file=sys.stderr)
                return 1
            except OSError as e:
                print("check_cbor: %s: %s" % (path, e.strerror), file=sys.stderr)
                return 1
            files += 1
            records += r
            footers += f
    print("%d files, %d records, %d footers" % (files, records, footers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
