"""``make bench``: every benchmark in turn, each printing its figures as ratios against a baseline
measured in the same run. Not tests: nothing here passes or fails on timing.

    python benchmarks/run.py [engine|jobs|azure|operator|deep|burst|shards|metrics ...]
                              [-- extra args for a single benchmark]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "engine": "bench_engine.py",  # issue 2: run vs find -delete, scan vs du -sb, peak RSS
    "jobs": "bench_jobs.py",  # issue 5: Orphaned with PostgreSQL job lookups vs no job source
    "azure": "bench_azure.py",  # issue 6: Blob Batch deletes vs one request per blob on Azurite
    "operator": "bench_operator.py",  # issue 4: apply-to-Succeeded latency, idle CPU/RSS with 100 policies
    "deep": "bench_deep.py",  # issue 12: a chain 3 000 directories deep vs 1 000 deep (linear: ~3x)
    "burst": "bench_burst.py",  # issue 14: 300 runs on one volume: runs/s, /healthz p50/p99 during the burst
    "metrics": "bench_metrics.py",  # issue 15: idle CPU with metrics on vs --metrics-port 0; scrape time
    "shards": "bench_shards.py",  # issue 16: 300 policies, stats every 10 s, on 1 and 3 replicas: lag p99, CPU
}


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    chosen = argv or list(BENCHMARKS)
    failed = []
    for name in chosen:
        script = HERE / BENCHMARKS[name]
        print(f"\n##### {name}: {script.name}", flush=True)
        if not script.exists():
            print("(not present)")
            continue
        code = subprocess.call([sys.executable, str(script), *extra])
        if code:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not complete: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
