"""Set up slurm-emulator by hand: its clock, QoS and finished jobs for ``report``.

    python -m waldur_site_agent_slurm.devtools.emulator clock            # show "now"
    python -m waldur_site_agent_slurm.devtools.emulator clock --now      # wall clock
    python -m waldur_site_agent_slurm.devtools.emulator clock --set 2026-04-01T00:00
    python -m waldur_site_agent_slurm.devtools.emulator clock --advance-days 30
    python -m waldur_site_agent_slurm.devtools.emulator qos slowdown blocked
    python -m waldur_site_agent_slurm.devtools.emulator job a_flood-model alice
        --start 2026-12-01T08:00 --end 2026-12-01T10:00 --tres cpu=4,mem=8192,gres/gpu=1

The emulator keeps its state in ``SLURM_EMULATOR_STATE_FILE`` and its clock in
``SLURM_EMULATOR_TIME_FILE``, as the agent's emulator mode does; export both first.
Without a clock file the emulator's clock stands at its default, 2024-01-01 00:00, so
periodic settings applied by hand fall in period 2024-Q1: ``clock --now`` sets it to the
wall clock. Times are UTC (the emulator's sacct runs with TZ=UTC).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta, timezone

from waldur_site_agent_slurm.devtools.demo import emulated

PROG = "python -m waldur_site_agent_slurm.devtools.emulator"
UTC = timezone.utc  # datetime.UTC from Python 3.11 on


def _time(value: str) -> datetime:
    """An ISO time, naive (UTC) as the emulator stores it."""
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _tres(value: str) -> dict[str, int]:
    """``cpu=4,mem=8192,gres/gpu=1`` as a dict of TRES counts."""
    result = {}
    for item in value.split(","):
        name, sep, count = item.partition("=")
        if not sep or not name.strip() or not count.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"{item!r}: expected NAME=COUNT, e.g. cpu=4,mem=8192,gres/gpu=1 (mem in MB)"
            )
        result[name.strip()] = int(count)
    return result


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    ap = argparse.ArgumentParser(
        prog=PROG, description="Set slurm-emulator's clock, add QoS, or add a finished job."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    clock = sub.add_parser("clock", help="show or set the emulator's clock")
    moves = clock.add_mutually_exclusive_group()
    moves.add_argument("--now", action="store_true", help="set it to the wall clock (UTC)")
    moves.add_argument("--set", type=_time, metavar="TIME", help="set it to TIME (ISO, UTC)")
    moves.add_argument("--advance-days", type=int, metavar="N", help="move it N days on")
    qos = sub.add_parser("qos", help="add QoS (the agent's default ones: slowdown blocked)")
    qos.add_argument("names", nargs="+")
    job = sub.add_parser("job", help="record a finished (or running) job for report mode")
    job.add_argument("account", help="the allocation account, e.g. a_flood-model")
    job.add_argument("user", help="the SLURM username, e.g. alice")
    job.add_argument("--start", type=_time, required=True, help="ISO time, UTC")
    job.add_argument("--end", type=_time, help="ISO time, UTC (none: still running)")
    job.add_argument("--tres", type=_tres, required=True, help="e.g. cpu=4,mem=8192,gres/gpu=1")
    return ap


def _clock(args: argparse.Namespace) -> str:
    # slurm-emulator is a development dependency, imported only when used.
    from emulator.core.time_engine import TimeEngine  # noqa: PLC0415

    engine = TimeEngine()
    if args.now:
        engine.set_time(datetime.now(UTC).replace(tzinfo=None, microsecond=0))
    elif args.set is not None:
        engine.set_time(args.set)
    elif args.advance_days is not None:
        engine.set_time(engine.get_current_time() + timedelta(days=args.advance_days))
    source = engine.state_file if engine.state_file.exists() else "its default: no clock file"
    return (
        f"emulator time {engine.get_current_time().isoformat()} UTC, "
        f"quarter {engine.get_current_quarter()} ({source})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status."""
    args = parser().parse_args(argv)
    if "SLURM_EMULATOR_STATE_FILE" not in os.environ:
        sys.stderr.write(
            f"{PROG}: export SLURM_EMULATOR_STATE_FILE (and SLURM_EMULATOR_TIME_FILE) as for "
            "the agent, so that the agent sees what this command changes\n"
        )
        return 2
    if args.command == "clock":
        sys.stdout.write(_clock(args) + "\n")
    elif args.command == "qos":
        emulated.add_qos(*args.names)
        sys.stdout.write(f"added QoS {', '.join(args.names)}\n")
    else:
        emulated.add_job(args.account, args.user, args.start, args.end, args.tres)
        end = args.end.isoformat() if args.end else "still running"
        sys.stdout.write(
            f"job of {args.user} on {args.account}: {args.start.isoformat()} -> {end}, "
            f"{args.tres}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
