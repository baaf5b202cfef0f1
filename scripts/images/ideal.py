#!/usr/bin/env python3
"""The ideal deduplication of disk images, computed independently of dm-dedup.

    scripts/images/ideal.py [--json] [--hash sha256|blake2b] [--sizes 4096,65536] IMAGE...
    scripts/images/ideal.py --self-test

Every image is read once, streaming, in 4 MiB chunks.  Each 4 KiB block is either all
zero (a pool stores nothing for it) or hashed (SHA-256 truncated to 16 bytes by
default; BLAKE2b-128 with --hash blake2b; never xxHash, which the scanner uses, so this
is a cross-check and not the same code twice).  A 64 KiB block (or any larger multiple
of 4 KiB given with --sizes) is zero when all its 4 KiB blocks are, and its digest is the
hash of its 4 KiB blocks' digests, which identifies its bytes as well as hashing them
would (two 64 KiB blocks get one digest exactly when their 4 KiB blocks are pairwise
identical, collisions apart) at no second pass over the data.

For each granularity it reports:
  per image   blocks, zero, non-zero, distinct non-zero, duplicates = non-zero - distinct,
              savings = duplicates / non-zero  (deduplication inside the image alone)
  pairwise    the same for the two images together, and the distinct blocks they share
  all         the same for all the images together: what an ideal pool would store

A short last block is padded with zeros to the block size (and reported).
Memory: a set of 16-byte digests per image and one for all of them (about 100 bytes
per distinct block in CPython); the time and the peak memory are printed.
"""

import argparse
import hashlib
import itertools
import json
import os
import resource
import sys
import time

CHUNK = 4 << 20  # bytes read at a time; a multiple of every block size
BASE = 4096


def digest_fn(name):
    if name == "sha256":
        sha = hashlib.sha256
        return lambda b: sha(b).digest()[:16]
    if name == "blake2b":
        b2 = hashlib.blake2b
        return lambda b: b2(b, digest_size=16).digest()
    raise SystemExit(f"ideal.py: unknown hash {name!r}")


class Tally:
    """Blocks of one granularity in one image."""

    def __init__(self):
        self.blocks = 0
        self.zero = 0
        self.digests = set()
        self.nonzero = 0

    def summary(self):
        return counts(self.blocks, self.zero, self.nonzero, len(self.digests))


def counts(blocks, zero, nonzero, distinct):
    dups = nonzero - distinct
    return {
        "blocks": blocks,
        "zero": zero,
        "nonzero": nonzero,
        "distinct": distinct,
        "duplicates": dups,
        "savings": (dups / nonzero) if nonzero else 0.0,
    }


def scan(path, sizes, digest):
    """Reads one image; returns {size: Tally} and the number of bytes read."""
    tallies = {s: Tally() for s in sizes}
    groups = {s: s // BASE for s in sizes if s != BASE}
    zero4 = bytes(BASE)
    zero_chunk = bytes(CHUNK)
    zd = digest(zero4)  # the digest of a zero 4 KiB block, for the larger blocks' digests
    t4 = tallies.get(BASE)
    nread = 0
    padded = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            # read() of a regular file or block device returns short only at the end
            nread += len(chunk)
            if len(chunk) % BASE:
                padded = BASE - len(chunk) % BASE
                chunk += bytes(padded)
            n4 = len(chunk) // BASE
            if chunk == zero_chunk[: len(chunk)]:
                for s, t in tallies.items():
                    k = -(-len(chunk) // s)
                    t.blocks += k
                    t.zero += k
                continue
            # 4 KiB digests of this chunk, None for a zero block
            ds = []
            for off in range(0, len(chunk), BASE):
                blk = chunk[off : off + BASE]
                ds.append(None if blk == zero4 else digest(blk))
            if t4 is not None:
                t4.blocks += n4
                nz = [d for d in ds if d is not None]
                t4.zero += n4 - len(nz)
                t4.nonzero += len(nz)
                t4.digests.update(nz)
            for s, g in groups.items():
                t = tallies[s]
                # a short last block of this size: zero-padded, as for 4 KiB
                sub_all = ds + [None] * (-len(ds) % g)
                for i in range(0, len(sub_all), g):
                    sub = sub_all[i : i + g]
                    t.blocks += 1
                    if all(d is None for d in sub):
                        t.zero += 1
                        continue
                    t.nonzero += 1
                    t.digests.add(digest(b"".join(zd if d is None else d for d in sub)))
    return tallies, nread, padded


def analyse(paths, sizes, hashname):
    digest = digest_fn(hashname)
    t0 = time.monotonic()
    per = []  # [(path, {size: Tally}, seconds)]
    total_read = 0
    for p in paths:
        t = time.monotonic()
        tallies, nread, padded = scan(p, sizes, digest)
        total_read += nread
        per.append((p, tallies, time.monotonic() - t, nread, padded))
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) != len(names):
        names = list(paths)
    out = {
        "hash": f"{hashname} truncated to 128 bits" if hashname == "sha256" else "blake2b-128",
        "images": [
            {"name": n, "path": p, "bytes": nread, "padded_bytes": padded, "seconds": round(sec, 3)}
            for n, (p, _, sec, nread, padded) in zip(names, per)
        ],
        "granularity": {},
    }
    for s in sizes:
        g = {"block_size": s, "per_image": [], "pairwise": [], "all": None}
        for n, (_, tallies, *_rest) in zip(names, per):
            g["per_image"].append({"name": n, **tallies[s].summary()})
        for (na, (_, ta, *_a)), (nb, (_, tb, *_b)) in itertools.combinations(zip(names, per), 2):
            a, b = ta[s], tb[s]
            shared = len(a.digests & b.digests)
            c = counts(a.blocks + b.blocks, a.zero + b.zero, a.nonzero + b.nonzero,
                       len(a.digests) + len(b.digests) - shared)
            g["pairwise"].append({"a": na, "b": nb, "shared": shared, **c})
        union = set()
        for _, tallies, *_r in per:
            union |= tallies[s].digests
        ts = [tallies[s] for _, tallies, *_r in per]
        g["all"] = counts(sum(t.blocks for t in ts), sum(t.zero for t in ts),
                          sum(t.nonzero for t in ts), len(union))
        del union
        out["granularity"][str(s)] = g
    out["bytes_read"] = total_read
    out["seconds"] = round(time.monotonic() - t0, 3)
    # ru_maxrss is in KiB on Linux
    out["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def human(res):
    lines = []
    w = max([len(i["name"]) for i in res["images"]] + [3])
    pw = max(w * 2 + 3, 3)
    hdr = "{:<%d} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}" % pw
    row = "{:<%d} {:>10} {:>10} {:>10} {:>10} {:>10} {:>6.1f}%%" % pw
    lines.append(f"# ideal deduplication ({res['hash']}), {len(res['images'])} image(s), "
                 f"{res['bytes_read'] / 2**20:.0f} MiB read")
    for i in res["images"]:
        pad = f", last block padded by {i['padded_bytes']} B" if i["padded_bytes"] else ""
        lines.append(f"#   {i['name']}: {i['bytes'] / 2**20:.0f} MiB, {i['seconds']:.1f} s{pad}")
    for s, g in res["granularity"].items():
        bs = int(s)
        unit = f"{bs // 1024} KiB"
        lines.append("")
        lines.append(f"## {unit} blocks")
        lines.append(hdr.format("image", "blocks", "zero", "non-zero", "distinct", "dups", "savings"))
        for r in g["per_image"]:
            lines.append(row.format(r["name"], r["blocks"], r["zero"], r["nonzero"], r["distinct"],
                                    r["duplicates"], 100 * r["savings"]))
        for r in g["pairwise"]:
            lines.append(row.format(f"{r['a']} + {r['b']}", r["blocks"], r["zero"], r["nonzero"],
                                    r["distinct"], r["duplicates"], 100 * r["savings"])
                         + f"  shared {r['shared']}")
        a = g["all"]
        lines.append(row.format("all", a["blocks"], a["zero"], a["nonzero"], a["distinct"],
                                a["duplicates"], 100 * a["savings"]))
        lines.append(f"# {unit}: {a['nonzero'] * bs / 2**20:.0f} MiB of non-zero blocks, "
                     f"{a['distinct'] * bs / 2**20:.0f} MiB distinct: an ideal pool stores "
                     f"{100 * (1 - a['savings']):.1f}% of the non-zero data")
    lines.append("")
    lines.append(f"# {res['seconds']:.1f} s, "
                 f"{res['bytes_read'] / 2**20 / max(res['seconds'], 1e-9):.0f} MiB/s, "
                 f"peak memory {res['max_rss_mib']:.0f} MiB")
    return "\n".join(lines)


def self_test():
    """Two small images whose counts are known (run: ideal.py --self-test)."""
    import tempfile

    def blk(tag):
        return (tag.encode() * BASE)[:BASE]

    z = bytes(BASE)
    # a: x x y + 13 zero | 16 x            b: x z + 14 zero | 16 x | 100 bytes of q
    a = [blk("x"), blk("x"), blk("y")] + [z] * 13 + [blk("x")] * 16
    b = [blk("x"), blk("z")] + [z] * 14 + [blk("x")] * 16
    with tempfile.TemporaryDirectory() as d:
        pa, pb = os.path.join(d, "a.img"), os.path.join(d, "b.img")
        with open(pa, "wb") as f:
            f.write(b"".join(a))
        with open(pb, "wb") as f:
            f.write(b"".join(b) + b"q" * 100)
        for h in ("sha256", "blake2b"):
            r = analyse([pa, pb], [4096, 65536], h)
            g4, g64 = r["granularity"]["4096"], r["granularity"]["65536"]
            got = (
                [(x["blocks"], x["zero"], x["nonzero"], x["distinct"]) for x in g4["per_image"]],
                (g4["pairwise"][0]["shared"], g4["all"]["distinct"], g4["all"]["duplicates"]),
                [(x["blocks"], x["zero"], x["nonzero"], x["distinct"]) for x in g64["per_image"]],
                (g64["pairwise"][0]["shared"], g64["all"]["distinct"], g64["all"]["duplicates"]),
                r["images"][1]["padded_bytes"],
            )
            want = (
                [(32, 13, 19, 2), (33, 14, 19, 3)],  # {x, y}; {x, z, q}
                (1, 4, 34),                          # x shared; x y z q
                [(2, 0, 2, 2), (3, 0, 3, 3)],
                (1, 4, 1),                           # the 16 x block is shared
                4096 - 100,
            )
            if got != want:
                print(f"ideal.py self-test ({h}): got {got}, want {want}", file=sys.stderr)
                return 1
    print("ideal.py self-test: ok")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Ideal block deduplication of disk images (independent of dm-dedup).")
    ap.add_argument("images", nargs="*", metavar="IMAGE")
    ap.add_argument("--self-test", action="store_true", help="check the counts on two small made-up images")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--hash", default="sha256", choices=["sha256", "blake2b"])
    ap.add_argument("--sizes", default="4096,65536",
                    help="block sizes, multiples of 4096 dividing 4 MiB (default 4096,65536)")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.images:
        ap.error("no IMAGE given")
    try:
        sizes = sorted({int(x) for x in args.sizes.split(",")})
    except ValueError:
        ap.error("--sizes: comma-separated integers")
    for s in sizes:
        if s < BASE or s % BASE or CHUNK % s:
            ap.error(f"--sizes: {s} is not a multiple of 4096 dividing {CHUNK}")
    for p in args.images:
        if not os.path.exists(p):
            ap.error(f"{p}: no such file")
    res = analyse(args.images, sizes, args.hash)
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(human(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
