"""``make bench``: run every benchmark in turn and print its figures (nothing is asserted).

    python -m bench.run_all [--only kiosk,vision,ingest,load] [--quick]

Each benchmark is its own module and can be run alone (see bench/README.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHES: dict[str, tuple[list[str], list[str]]] = {
    # name: (full arguments, --quick arguments)
    "kiosk": (["-m", "bench.kiosk.latency"], ["-m", "bench.kiosk.latency"]),
    "vision": (["-m", "bench.vision.run"], ["-m", "bench.vision.run"]),
    "ingest": (["-m", "bench.ingest.run"], ["-m", "bench.ingest.run"]),
    "load": (["-m", "bench.load.run"], ["-m", "bench.load.run", "--minutes", "1", "--kiosks", "500"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    ap.add_argument("--quick", action="store_true", help="shorter load run")
    args = ap.parse_args(argv)
    failed = []
    for name in args.only.split(","):
        full, quick = BENCHES[name]
        print(f"\n===== bench {name} =====", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, *(quick if args.quick else full)])
        print(f"===== {name}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print("benchmarks that failed to run: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
