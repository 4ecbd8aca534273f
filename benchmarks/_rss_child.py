"""Measure the peak RSS of one big-array step in a fresh process; print it as JSON.

Run by ``_bigarray.py`` (through a small launcher, see there). Modes:

- ``baseline``: import kazeflow, numpy and the assets, then do nothing;
- ``cold``: build the array and run the flow into the (empty) store;
- ``read``: run the flow over a warm store and read the array back.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys


def peak_mib() -> float:
    """This process's peak resident set size in MiB (ru_maxrss)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["baseline", "cold", "read"])
    parser.add_argument("--module-dir", required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--array-mib", type=int, required=True)
    args = parser.parse_args(argv)

    sys.path.insert(0, args.module_dir)
    from _bigarray import make_array

    from kazeflow import Flow

    module = importlib.import_module(args.module)
    if args.mode == "cold":
        module.ARRAYS["big"] = make_array(args.array_mib)
        result = Flow(["total"], store=args.store).run()
        assert result.materialized == ("big", "total"), result.summary()
    elif args.mode == "read":
        result = Flow(["total"], store=args.store).run()
        assert result.reused == ("big", "total"), result.summary()
        assert result["big"].nbytes == args.array_mib << 20
    print(json.dumps({"mode": args.mode, "peak_mib": peak_mib()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
