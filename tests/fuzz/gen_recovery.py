#!/usr/bin/env python3
"""gen_recovery.py - writes the seed corpora of fuzz_recovery.c
(tests/fuzz/recovery/) and fuzz_dump.c (tests/fuzz/dump/).

Op-list seeds (mode 1 of fuzz_recovery.c) are written directly; the store
each one builds is then exported as a dir image (mode 0) by running the
replay binary with FUZZ_RECOVERY_EXPORT, so the image seeds are real stores
written by the engine, and damaged copies of them are made here.

usage: tests/fuzz/gen_recovery.py [BUILD]   (BUILD: build, by default; run
make build/tests/fuzz-replay-recovery first)
"""
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REC = os.path.join(HERE, "recovery")
DUMP = os.path.join(HERE, "dump")

# ops of mode 1 (see build() in fuzz_recovery.c): op = key << 3 | type
SET, REMOVE, SETX, BATCH, FLUSH, COMPACT, BIG, END = range(8)


def op(t, k=0, *args):
    return bytes([(k % 32) << 3 | t]) + bytes(args)


def sets(keys, length=40):
    return b"".join(op(SET, k, length) for k in keys)


def bigs(keys, n=150):
    return b"".join(op(BIG, k, n) for k in keys)


def batch(items):
    """items: (key, remove, len)"""
    out = op(BATCH, 0, len(items) - 2)
    for k, rm, ln in items:
        out += bytes([(k << 1) | rm])
        if not rm:
            out += bytes([ln])
    return out


def cut(sel, off):
    return bytes([0, sel]) + struct.pack("<H", off)


def flip(sel, off, x=0x40):
    return bytes([1, sel]) + struct.pack("<H", off) + bytes([x])


def delete(sel):
    return bytes([2, sel])


def append(sel, data):
    return bytes([3, sel, len(data)]) + data


def tmp(sel, data):
    return bytes([4, sel, len(data)]) + data


ROT = bigs(range(6), 40)  # about 5.5 KB: two segments of 4 KiB

OPS = {
    "ops-sets-removes": sets(range(10)) + op(REMOVE, 3) + op(REMOVE, 4)
    + sets([3], 7),
    "ops-rotation": ROT + sets(range(4)),
    "ops-rotation-cut-newest": ROT + sets(range(4)) + op(END)
    + cut(0, 100),
    "ops-batch-cut": ROT + batch([(1, 0, 30), (2, 0, 30), (3, 1, 0),
                                  (9, 0, 50)]) + op(END) + cut(0, 0x90),
    "ops-batch-whole": sets(range(4)) + batch([(5, 0, 10), (6, 0, 10),
                                               (0, 1, 0)]),
    "ops-flush": ROT + op(FLUSH) + sets([1, 2, 3], 20) + op(REMOVE, 2),
    "ops-flush-cut": sets(range(6)) + op(FLUSH) + sets([1]) + op(END)
    + cut(0, 60),
    "ops-compact": ROT + sets(range(8), 10) + op(REMOVE, 5) + op(COMPACT)
    + sets([1, 20], 5),
    "ops-compact-flip-sealed": ROT + op(COMPACT) + sets([3]) + op(END)
    + flip(1, 300),
    "ops-flip-hint": ROT + op(END) + flip(129, 40),
    "ops-delete-hint": ROT + op(END) + delete(128),
    "ops-delete-segment": ROT + op(END) + delete(1),
    "ops-setx": sets(range(3)) + op(SETX, 7, 30) + op(SETX, 8, 0) + ROT,
    "ops-tmp-leftover": ROT + op(END) + tmp(2, b"\xd9\xd9\xf8junk")
    + tmp(130, b""),
    "ops-append-newest": sets(range(5)) + op(END) + append(0, b"\x85\x01"),
    "ops-cut-short-header": sets(range(2)) + op(COMPACT) + op(END)
    + cut(0, 5),
}


def entries(image):
    """(kind, id, bytes) of a mode-0 image (after its mode byte)."""
    out, p = [], 1
    while p + 4 <= len(image):
        kind, ident, ln = image[p], image[p + 1], image[p + 2] | image[p + 3] << 8
        out.append([kind, ident, bytearray(image[p + 4:p + 4 + ln])])
        p += 4 + ln
    return out


def pack(ents, mode=0):
    out = bytearray([mode])
    for kind, ident, data in ents:
        out += bytes([kind, ident]) + struct.pack("<H", len(data)) + data
    return bytes(out)


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    replay = os.path.join(build, "tests", "fuzz-replay-recovery")
    for d in (REC, DUMP):
        os.makedirs(d, exist_ok=True)
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
    names = sorted(OPS)
    for n in names:
        write(REC, n, b"\x01" + OPS[n])
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, FUZZ_RECOVERY_EXPORT=out)
        # The replay binary feeds the files in name order.
        subprocess.run([replay] + [os.path.join(REC, n) for n in names],
                       check=True, env=env)
        images = {n: open(os.path.join(out, "image-%03d" % i), "rb").read()
                  for i, n in enumerate(names)}
    picks = ["ops-rotation", "ops-batch-whole", "ops-flush", "ops-compact",
             "ops-setx", "ops-sets-removes"]
    for n in picks:
        img = images[n]
        base = "img-" + n[4:]
        write(REC, base, img)
        write(DUMP, base, b"\x00" + img[1:])
        ents = entries(img)
        segs = [e for e in ents if e[0] == 0]
        hints = [e for e in ents if e[0] == 1]
        newest = segs[-1]
        # A torn newest segment: its last record cut in half.
        torn = [list(e) for e in ents]
        t = [e for e in torn if e[0] == 0][-1]
        if len(t[2]) > 20:
            t[2] = t[2][:len(t[2]) - 7]
        write(REC, base + "-torn", pack(torn))
        write(DUMP, base + "-torn", b"\x04" + pack(torn)[1:])
        if len(segs) > 1:
            # A sealed segment with one flipped byte in a record.
            bad = [[k, i, bytearray(d)] for k, i, d in ents]
            s = [e for e in bad if e[0] == 0][0]
            s[2][len(s[2]) // 2] ^= 0x20
            write(REC, base + "-flip-sealed", pack(bad))
            write(DUMP, base + "-flip-sealed", b"\x09" + pack(bad)[1:])
        if hints:
            # A hint cut short, and a leftover temporary file.
            bad = [[k, i, bytearray(d)] for k, i, d in ents]
            h = [e for e in bad if e[0] == 1][0]
            h[2] = h[2][:len(h[2]) // 2]
            bad.append([2, newest[1] + 1, bytearray(b"\xd9\xd9\xf8")])
            write(REC, base + "-hint-cut-tmp", pack(bad))
            write(DUMP, base + "-hint-cut-tmp", b"\x0b" + pack(bad)[1:])
    # The newest segment cut just before an atomic batch's closing marker
    # (9 bytes: [seq, 3, open, crc]): the engine drops the batch at open,
    # and kvs-dump --verify must fail it.
    ents = entries(images["ops-batch-whole"])
    [e for e in ents if e[0] == 0][-1][2][-9:] = b""
    write(REC, "img-batch-without-end", pack(ents))
    write(DUMP, "img-batch-without-end", b"\x00" + pack(ents)[1:])
    # A real segment named 0000000000.seg, no segment number: the engine
    # passes over it, and so must kvs-dump.
    ents = entries(images["ops-sets-removes"])
    ents[0][1] = 0
    write(DUMP, "img-segment-number-zero", b"\x00" + pack(ents)[1:])
    # Small hand-made images: nothing, an engine marker of another engine,
    # a short header, a junk file and a hint without its segment.
    hdr = bytes.fromhex("d9d9f8da6b76733143424f52")
    write(REC, "img-empty", b"\x00")
    write(REC, "img-engine-lmdb", pack([[3, 0, bytearray(b"lmdb\n")],
                                        [0, 1, bytearray(hdr)]]))
    write(REC, "img-short-header", pack([[0, 1, bytearray(hdr[:5])],
                                         [5, 0, bytearray(b"x")]]))
    write(REC, "img-orphan-hint", pack([[1, 3, bytearray(b"\xd9\xd9\xf8")],
                                        [0, 4, bytearray(hdr)]]))
    write(DUMP, "img-orphan-hint", b"\x05" + pack(
        [[1, 3, bytearray(b"\xd9\xd9\xf8")], [0, 4, bytearray(hdr)]])[1:])


if __name__ == "__main__":
    main()
