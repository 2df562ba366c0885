"""Cost of a historical usage load: 12 months × 1000 allocations, 1,000,000 job records.

SLURM is replaced by stand-in ``sacctmgr``/``sacct`` executables in a temporary
``slurm_bin_path`` (``tests/fakebin.py``): sacct ``cat``s a pre-generated month of
``--parsable2 --noheader`` lines in exactly the client's column order, so the plugin's
real path runs: runner.stream over a pipe → parser.parse_jobs → UsageAccumulator →
build_report. Each month is asked the way ``waldur_site_load_historical_usage`` asks:
a fresh backend (no processor, zone from ``backend_settings.timezone``), one call for
every allocation.

The load runs in a child process, so its peak RSS is the plugin's and the framework's,
not the generator's. Printed: wall time, sacct and sacctmgr calls, parser throughput
(``parser.parse_jobs`` alone, streaming the same files), end-to-end records/s and peak
RSS (``resource.getrusage``).

    python bench/historical.py                        # 12 months, 1000 allocations, 1e6
    python bench/historical.py --allocations 100 --records 100000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakebin import FakeSlurmBin, allocation_rows, calls_in
from waldur_site_agent_slurm.allocation.usage import current_month, month_window
from waldur_site_agent_slurm.slurm import parser

ZONE = "Europe/Tallinn"
USERS_PER_ALLOCATION = 3
CROSSING_SHARE = 0.05  # jobs that run on into the next month (printed for both months)
RUNNING_SHARE = 0.002  # jobs still running: End=Unknown, printed for every later month
FMT = "%Y-%m-%dT%H:%M:%S"
COMPONENTS = {
    "cpu": {"measured_unit": "CPU-hours", "unit_factor": 60, "accounting_type": "usage"},
    "mem": {"measured_unit": "GB-hours", "unit_factor": 61440, "accounting_type": "usage"},
    "gpu": {"measured_unit": "GPU-hours", "unit_factor": 60, "accounting_type": "usage"},
}
SHAPES = [  # AllocTRES as sacct --noconvert prints it: sorted names, memory in M
    "billing=1,cpu=1,mem=2048M,node=1",
    "billing=4,cpu=4,mem=8192M,node=1",
    "billing=16,cpu=16,mem=32768M,node=1",
    "billing=64,cpu=64,mem=262144M,node=2",
    "billing=8,cpu=8,gres/gpu=1,mem=65536M,node=1",
    "billing=32,cpu=32,gres/gpu=4,mem=262144M,node=1",
]


@dataclass(frozen=True)
class BenchJob:
    """One generated job; ``end`` None means still running."""

    job_id: int
    account: str
    user: str
    shape: str
    start: datetime
    end: datetime | None

    def line(self) -> str:
        """The job as ``sacct --parsable2 --noheader --format=<SACCT_FIELDS>`` prints it."""
        state, end = ("RUNNING", "Unknown") if self.end is None else ("COMPLETED", "")
        end = end or self.end.strftime(FMT)  # type: ignore[union-attr]
        return (
            f"{self.job_id}|{self.account}|{self.user}|{state}|"
            f"{self.start.strftime(FMT)}|{end}|{self.shape}\n"
        )


def last_months(count: int) -> list[tuple[int, int]]:
    """The ``count`` months before the current one (in ZONE), oldest first."""
    year, month = current_month(ZONE)
    months = []
    for _ in range(count):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        months.append((year, month))
    return months[::-1]


def generate(
    directory: Path, months: list[tuple[int, int]], allocations: int, records: int
) -> dict[str, object]:
    """Write the stand-in SLURM and one sacct output per month, ``records`` lines in all.

    Streams: only the jobs carried into the next month are kept in memory.
    """
    rng = random.Random(5)  # noqa: S311 - reproducible bench data
    fake = FakeSlurmBin(directory)
    accounts = [f"alloc{i:04d}" for i in range(allocations)]
    fake.set_accounts(allocation_rows(accounts))
    per_month = [records // len(months) + (i < records % len(months)) for i in range(len(months))]
    carried: list[BenchJob] = []
    job_id = 0
    for (year, month), wanted in zip(months, per_month, strict=True):
        window = month_window(year, month, ZONE)
        first = window.start.replace(tzinfo=None)
        last = window.end.replace(tzinfo=None)
        seconds = int((last - first).total_seconds())
        with fake.month_file(window.sacct_bounds()[0]).open("w") as out:
            out.writelines(job.line() for job in carried)
            new_jobs = wanted - len(carried)
            carried = [job for job in carried if job.end is None]  # crossing jobs end here
            for _ in range(new_jobs):
                job_id += 1
                a = rng.randrange(allocations)
                user = f"user{a * USERS_PER_ALLOCATION + rng.randrange(USERS_PER_ALLOCATION):05d}"
                roll = rng.random()
                if roll < CROSSING_SHARE:  # starts on the last day, ends in the next month
                    start = last - timedelta(seconds=rng.randrange(1, 86400))
                    end: datetime | None = start + timedelta(days=2)
                elif roll < CROSSING_SHARE + RUNNING_SHARE:
                    start = first + timedelta(seconds=rng.randrange(seconds))
                    end = None
                else:
                    start = first + timedelta(seconds=rng.randrange(seconds - 7200))
                    end = start + timedelta(seconds=rng.randrange(60, 7200))
                job = BenchJob(job_id, accounts[a], user, rng.choice(SHAPES), start, end)
                out.write(job.line())
                if end is None or end > last:
                    carried.append(job)
    return {"months": months, "accounts": accounts, "records": records}


def measure(directory: Path) -> dict[str, float]:
    """The load itself; runs in its own process."""
    from waldur_site_agent_slurm.backend import SlurmBackend

    manifest = json.loads((directory / "manifest.json").read_text())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    settings = {
        "slurm_bin_path": str(directory),
        "timezone": ZONE,
        "enable_user_homedir_account_creation": False,
    }
    started = time.perf_counter()
    checksum = 0.0
    for year, month in manifest["months"]:
        backend = SlurmBackend(
            dict(settings), {k: {**v, "label": k} for k, v in COMPONENTS.items()}
        )
        report = backend.get_usage_report_for_period(manifest["accounts"], year, month)
        assert len(report) == len(manifest["accounts"])
        checksum += sum(entry["TOTAL_ACCOUNT_USAGE"]["cpu"] for entry in report.values())
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    parse_started = time.perf_counter()
    parsed = 0
    for path in sorted(directory.glob("sacct-*.txt")):
        with path.open() as lines:
            for _ in parser.parse_jobs(line.rstrip("\n") for line in lines):
                parsed += 1
    parse_time = time.perf_counter() - parse_started
    return {
        "wall_s": wall,
        "sacct_calls": len(calls_in(directory, "sacct")),
        "sacctmgr_calls": len(calls_in(directory, "sacctmgr")),
        "records": parsed,
        "parser_records_per_s": parsed / parse_time,
        "end_to_end_records_per_s": parsed / wall,
        "rss_after_imports_mb": rss_before / 1024,
        "peak_rss_mb": peak / 1024,
        "cpu_hours_total": checksum,
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--months", type=int, default=12)
    args.add_argument("--allocations", type=int, default=1000)
    args.add_argument("--records", type=int, default=1_000_000)
    args.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    opts = args.parse_args()
    if opts.measure:
        print(json.dumps(measure(opts.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        generated = time.perf_counter()
        manifest = generate(directory, last_months(opts.months), opts.allocations, opts.records)
        (directory / "manifest.json").write_text(json.dumps(manifest))
        generated = time.perf_counter() - generated
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(directory)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"{opts.months} months × {opts.allocations} allocations, {result['records']:,} sacct "
        f"records (generated in {generated:.1f} s)"
    )
    print(f"  wall time              {result['wall_s']:.1f} s")
    print(
        f"  sacct calls            {result['sacct_calls']}  (sacctmgr: {result['sacctmgr_calls']})"
    )
    print(f"  parser throughput      {result['parser_records_per_s']:,.0f} records/s")
    print(f"  end to end             {result['end_to_end_records_per_s']:,.0f} records/s")
    print(
        f"  peak RSS               {result['peak_rss_mb']:.0f} MB "
        f"(after imports: {result['rss_after_imports_mb']:.0f} MB)"
    )


if __name__ == "__main__":
    main()
