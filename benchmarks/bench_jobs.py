"""Benchmark of job lookups (issue 5): an Orphaned run with job status from PostgreSQL vs. the same run without.

Starts its own throw-away PostgreSQL (the test fixture's PostgresServer: Debian's server binaries,
initdb into a temp dir, a free loopback port, run as the `postgres` user when we are root), fills a
realistic `crawl_jobs` table, and builds identical trees of N files (default 200 000) belonging to
N / 10 jobs (default 20 000), ten chunk files per job, in directories of 1 000. Every job in the
table is finished, so both runs delete every file: the difference is the job lookups alone.
Each repeat builds a fresh tree per variant and alternates which variant goes first.

Not a test: figures depend on the machine; record them with the machine in benchmarks/results-jobs.md.

    python benchmarks/bench_jobs.py [--files N] [--repeat 5] [--extra-rows 80000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the PostgreSQL server helper the tests use

from support.postgres_server import SUPERUSER, PostgresServer, find_bindir, start_server  # noqa: E402

TEMPSWEEP = str(Path(sys.executable).with_name("tempsweep"))
FILES_PER_JOB = 10

POLICY = """apiVersion: tempsweep.io/v1alpha1
kind: CleanupPolicy
metadata: {{name: bench}}
spec:
  storage: {{volume: {{path: {root}}}}}
  thresholds: {{minFreeSpace: 0}}
  orphans: {{maxAgeHours: 0.0001}}
  limits: {{maxFilesPerRun: {limit}, batchSize: 1000, parallelism: {parallelism}, maxDeletePercent: 100}}
{jobs}"""
JOBS = """  jobs:
    database:
      url: "{url}"
      table: crawl_jobs
"""
RUN = """apiVersion: tempsweep.io/v1alpha1
kind: CleanupRun
metadata: {name: bench-orphaned}
spec: {policyRef: {name: bench}, type: Orphaned}
"""


def start_bench_server() -> PostgresServer:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL server binaries are missing: run `make postgres`")
    run_as = SUPERUSER if os.geteuid() == 0 else None  # initdb refuses root
    base = Path(tempfile.mkdtemp(prefix="tempsweep-bench-pg-", dir="/tmp"))
    return start_server(bindir, base, run_as)


def fill_jobs(server: PostgresServer, jobs: int, extra_rows: int) -> str:
    """A job table: the N/10 jobs of the files, all finished, plus older jobs of every status."""
    url = server.create_database("bench")
    with server.connect("bench") as conn:
        conn.execute("""CREATE TABLE crawl_jobs (
            id bigint PRIMARY KEY, url text NOT NULL, status text NOT NULL, pages_done integer NOT NULL,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""")
        conn.execute(
            """INSERT INTO crawl_jobs
            SELECT n, 'https://example.org/' || n, 'completed', n %% 500, now() - interval '3 days',
                   now() - interval '2 days'
            FROM generate_series(1, %s::bigint) AS n""",
            (jobs,),
        )
        conn.execute(
            """INSERT INTO crawl_jobs
            SELECT n, 'https://example.org/' || n, (ARRAY['running','pending','failed','completed'])[1 + n %% 4],
                   0, now() - interval '30 days', now() - interval '20 days'
            FROM generate_series(%s::bigint, %s::bigint) AS n""",
            (jobs + 1, jobs + extra_rows),
        )
        conn.execute("CREATE INDEX ON crawl_jobs (status)")
        conn.execute("VACUUM ANALYZE crawl_jobs")
    return url


def build_tree(root: Path, files: int, per_dir: int = 1000) -> None:
    """``files`` files of ``files / 10`` jobs: a job's ten chunks sit together in one directory."""
    payload = b"x" * 64
    directories = max(1, files // per_dir)
    for index in range(directories):
        (root / f"d{index:05d}").mkdir(parents=True)
    jobs = files // FILES_PER_JOB
    for number in range(1, jobs + 1):
        directory = root / f"d{number % directories:05d}"
        for chunk in range(FILES_PER_JOB):
            fd = os.open(directory / f"job_{number}_chunk_{chunk}_part.tmp", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, payload)
            os.close(fd)


def timed_run(run: Path, policy: Path) -> tuple[float, float, int, dict[str, object]]:
    """Wall seconds, CPU seconds (user + system), peak RSS (KiB) and the printed status of one `tempsweep run`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [TEMPSWEEP, "run", "-f", str(run), "--policy", str(policy)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"tempsweep run exited {code}: {out.decode(errors='replace')[:2000]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, json.loads(out)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    memory = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.splitlines()[1].split()[1]
    return f"nproc {nproc}, free -g total {memory} GiB, {cpu}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="fresh tree pairs to time (default 5)")
    parser.add_argument("--extra-rows", type=int, default=80_000, help="other jobs in the table")
    parser.add_argument("--parallelism", type=int, default=4)
    args = parser.parse_args()
    jobs = args.files // FILES_PER_JOB

    print(f"machine: {machine()}")
    print(f"tree: {args.files} files of {jobs} jobs ({FILES_PER_JOB} per job), directories of 1000")
    server = start_bench_server()
    base = Path(tempfile.mkdtemp(prefix="tempsweep-bench-jobs-"))
    try:
        url = fill_jobs(server, jobs, args.extra_rows)
        print(f"job table: {jobs + args.extra_rows} rows in PostgreSQL ({server.bindir.parent.name})")
        run = base / "run.yaml"
        run.write_text(RUN)
        wall: dict[str, list[float]] = {"jobs": [], "none": []}
        cpu: dict[str, list[float]] = {"jobs": [], "none": []}
        rss: dict[str, int] = {}
        queries: list[int] = []
        for repeat in range(args.repeat):
            order = ("jobs", "none") if repeat % 2 == 0 else ("none", "jobs")
            for variant in order:
                tree = base / f"tree-{variant}"
                build_tree(tree, args.files)
                time.sleep(1.0)  # every file older than maxAgeHours (0.36 s)
                policy = base / f"policy-{variant}.yaml"
                database = JOBS.format(url=url) if variant == "jobs" else ""
                policy.write_text(
                    POLICY.format(root=tree, limit=args.files * 2, parallelism=args.parallelism, jobs=database)
                )
                elapsed, used, peak, status = timed_run(run, policy)
                deleted = status["filesDeleted"]
                if deleted != args.files or any(files for _, _, files in os.walk(tree)):
                    raise SystemExit(f"{variant}: deleted {deleted} of {args.files}: {status['message']}")
                wall[variant].append(elapsed)
                cpu[variant].append(used)
                rss[variant] = max(rss.get(variant, 0), peak)
                if variant == "jobs":
                    queries.append(int(str(status["jobQueries"])))
                print(
                    f"  repeat {repeat + 1}: {variant:>4}: wall {elapsed:6.2f} s, cpu {used:6.2f} s "
                    f"({status['deletedByReason']})",
                    flush=True,
                )
                shutil.rmtree(tree)
        print(f"job queries per run: {sorted(set(queries))} for {jobs} jobs (ceil(ids/1000) = {-(-jobs // 1000)})")
        for label, figures in (("wall", wall), ("cpu (user+sys)", cpu)):
            for name, pick in (("median", statistics.median), ("best", min)):
                with_jobs, without = pick(figures["jobs"]), pick(figures["none"])
                print(
                    f"{label:>14} {name:>6} of {args.repeat}: with PostgreSQL {with_jobs:6.2f} s, "
                    f"without {without:6.2f} s"
                    f" -> ratio {with_jobs / without:.3f}x ({100 * (with_jobs / without - 1):+.1f} %, target < +15 %)"
                )
        print(f"peak RSS: with jobs {rss['jobs'] / 1024:.0f} MiB, without {rss['none'] / 1024:.0f} MiB")
    finally:
        shutil.rmtree(base, ignore_errors=True)
        server.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
