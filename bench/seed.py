"""The seed's own method, for the benchmark: pickle protocol 2 into gzip level 9.

    python3 bench/seed.py S1 [--runs 5] [--quick] [--budget 25]

Builds the Python twin of a workload of bench/common.mjs (S1: numpy float64 + float32
arrays and scalars; S2: dicts with str/float/datetime/dict, a set, big ints, a cycle;
S3: a list of ints), then times save (`gzip.open(path, 'wb', 9)` + `pickle.dump(obj, f,
2)`) and load (`gzip.open(path, 'rb')` + `pickle.load(f)`) with time.perf_counter, each in a
fresh temp dir. Slow workloads stop once another run would pass the budget (seconds).
Prints one line: `@@result {json}`.
"""

import datetime
import gc
import gzip
import json
import os
import pickle
import platform
import random
import shutil
import sys
import tempfile
import time


def parse(argv):
    args = {"runs": None, "quick": False, "budget": 25.0, "workload": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--quick":
            args["quick"] = True
        elif a == "--runs":
            i += 1
            args["runs"] = int(argv[i])
        elif a == "--budget":
            i += 1
            args["budget"] = float(argv[i])
        else:
            args["workload"] = a
        i += 1
    if args["runs"] is None:
        args["runs"] = 2 if args["quick"] else 5
    return args


def sizes(quick):
    if quick:
        return dict(f64=1_250_000, f32=100_000, objects=20_000, set_size=5_000, primes=10_000)
    return dict(f64=12_500_000, f32=1_000_000, objects=200_000, set_size=50_000, primes=100_000)


KINDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]


def build(workload, n):
    if workload == "S1":
        import numpy as np

        rng = np.random.default_rng(1)
        return {
            "weights": rng.random(n["f64"], dtype=np.float64),
            "bias": rng.random(n["f32"], dtype=np.float32),
            "step": 123456,
            "loss": 0.0421,
            "name": "run-7",
            "done": False,
        }
    if workload == "S2":
        rnd = random.Random(2)
        t0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
        items = [
            {
                "id": i,
                "name": f"item-{i}",
                "kind": KINDS[i % len(KINDS)],
                "score": rnd.random(),
                "created": t0 + datetime.timedelta(seconds=i),
                "tags": {"rank": i % 1000, "group": f"g{i % 97}"},
            }
            for i in range(n["objects"])
        ]
        seen = {f"url-{i}-{rnd.getrandbits(32):x}" for i in range(n["set_size"])}
        big = [2**64 + 1, -(3**80), 10**30 + 7, 2**200 - 1, 123456789]
        state = {"items": items, "seen": seen, "big": big, "cursor": n["objects"], "meta": {"label": "S2"}}
        state["meta"]["owner"] = state  # a cycle
        return state
    if workload == "S3":
        count = n["primes"]
        limit = 1000
        import math

        while limit / math.log(limit) < count * 1.2:
            limit *= 2
        sieve = bytearray([1]) * (limit + 1)
        sieve[0:2] = b"\x00\x00"
        for i in range(2, int(limit**0.5) + 1):
            if sieve[i]:
                sieve[i * i :: i] = bytearray(len(range(i * i, limit + 1, i)))
        primes = [i for i in range(limit + 1) if sieve[i]][:count]
        return {"primes": primes, "candidate": primes[-1]}
    raise SystemExit(f"unknown workload {workload}")


def main():
    args = parse(sys.argv[1:])
    state = build(args["workload"], sizes(args["quick"]))
    budget = args["budget"]
    saves, loads, size, spent, last = [], [], 0, 0.0, 0.0
    for run in range(args["runs"]):
        if run > 0 and spent + last > budget:
            break
        d = tempfile.mkdtemp(prefix="rs-bench-seed-")
        path = os.path.join(d, "state.pkl.gz")
        gc.collect()
        t = time.perf_counter()
        with gzip.open(path, "wb", 9) as f:
            pickle.dump(state, f, 2)
        save = time.perf_counter() - t
        size = os.path.getsize(path)
        gc.collect()
        t = time.perf_counter()
        with gzip.open(path, "rb") as f:
            loaded = pickle.load(f)
        load = time.perf_counter() - t
        del loaded
        shutil.rmtree(d, ignore_errors=True)
        saves.append(save * 1000)
        loads.append(load * 1000)
        last = save + load
        spent += last
        sys.stderr.write(f"  [{args['workload']} seed] run {run + 1}: save {save:.2f} s, load {load:.2f} s\n")
    versions = {"python": platform.python_version()}
    if args["workload"] == "S1":
        import numpy

        versions["numpy"] = numpy.__version__
    print("@@result " + json.dumps({"save": saves, "load": loads, "bytes": size, **versions}))


if __name__ == "__main__":
    main()
