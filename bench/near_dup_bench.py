"""Near-duplicate dialogues at scale: rolegen's MinHash-LSH (`dataset_checks.near_duplicates`,
numpy) against the same method with rensa's Rust MinHash digests, on the checks benchmark's
corpus (95% distinct dialogue texts of up to 1,500 characters, 5% edited copies), in one
run. Both verify candidates with `fuzz.ratio` >= 90; the pairs found are compared.

    python bench/near_dup_bench.py [N]    # N dialogue texts (default 100,000)

Writes bench/results/near_duplicates.json. rensa is optional (`pip install rensa`); without
it only rolegen's own code is timed.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from checks_bench import dialogue_texts
from rapidfuzz import fuzz, process, utils

from rolegen.checks.dataset_stats import near_duplicates


def rensa_dups(texts, threshold=90.0, num_perm=128, bands=32, shingle=3, seed=0):
    """The same MinHash-LSH with rensa's digests; returns the pairs and the stage times."""
    from rensa import RMinHash

    t0 = time.perf_counter()
    processed = [utils.default_process(t) for t in texts]
    sets = []
    for p in processed:
        w = p.split()
        grams = [" ".join(g) for g in zip(*(w[k:] for k in range(shingle)))] or [p]
        sets.append(grams)
    t1 = time.perf_counter()
    digs = RMinHash.digests_from_token_sets(sets, num_perm, seed)
    sig = np.asarray(digs, dtype=np.uint64)
    t2 = time.perf_counter()
    rows = num_perm // bands
    candidates = set()
    for band in range(bands):
        keys = (
            np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
            .view(np.dtype((np.void, rows * 8)))
            .ravel()
        )
        _, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared = np.nonzero((counts > 1) & (counts <= 100))[0]
        if not len(shared):
            continue
        mask = np.isin(inv, shared)
        idx = np.nonzero(mask)[0]
        order = np.argsort(inv[idx], kind="stable")
        idx = idx[order]
        grp = inv[idx]
        starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
        ends = np.r_[starts[1:], len(idx)]
        for s, e in zip(starts.tolist(), ends.tolist()):
            m = idx[s:e].tolist()
            candidates.update((x, y) for k, x in enumerate(m) for y in m[k + 1 :])
    t3 = time.perf_counter()
    pairs = sorted(candidates)
    scores = (
        process.cpdist(
            [processed[i] for i, _ in pairs],
            [processed[j] for _, j in pairs],
            scorer=fuzz.ratio,
            workers=-1,
        )
        if pairs
        else []
    )
    t4 = time.perf_counter()
    stages = {"shingles": t1 - t0, "digests": t2 - t1, "bands": t3 - t2, "verify": t4 - t3}
    found = [(i, j, float(s)) for (i, j), s in zip(pairs, scores) if s >= threshold]
    return found, {k: round(v, 2) for k, v in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=100_000, help="dialogue texts")
    N = ap.parse_args().n
    texts = dialogue_texts(N)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    own = near_duplicates(texts, threshold=90)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "texts": N,
        "load_average_before": round(load, 2),
        "rolegen": {"seconds": round(time.perf_counter() - start, 2), "pairs": len(own)},
    }
    try:
        start = time.perf_counter()
        other, stages = rensa_dups(texts)
        same = {(i, j) for i, j, _ in own} & {(i, j) for i, j, _ in other}
        result["rensa"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "pairs": len(other),
            "pairs_in_common": len(same),
            "stages": stages,
        }
    except ImportError:
        result["rensa"] = None
    out = Path(__file__).parent / "results" / "near_duplicates.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
