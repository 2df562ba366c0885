"""``waldur_site_diagnose_slurm_account``: the command line, mapped onto ``DiagnoseService``.

Exit status: 0 everything matches, 1 mismatches found (after ``--fix``: still found),
2 the diagnosis could not be made (configuration, Waldur or SLURM), with a one-line
reason on stderr. ``--check-config`` checks the configuration alone (no SLURM, no
Waldur): 0 usable, 1 errors found. ``--json`` prints one JSON document on stdout and
nothing else; logs always go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from waldur_site_agent.backend import configure_logger

from waldur_site_agent_slurm.diagnose import config_check
from waldur_site_agent_slurm.diagnose.model import MISMATCH, Report, Step, error_document
from waldur_site_agent_slurm.diagnose.render import Style, render, render_fix
from waldur_site_agent_slurm.diagnose.service import DiagnoseError, DiagnoseService, Params, load
from waldur_site_agent_slurm.log_level import apply_env_log_level

PROG = "waldur_site_diagnose_slurm_account"
EXIT_OK, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2
DEFAULT_CONFIG = "waldur-site-agent-config.yaml"


def parser() -> argparse.ArgumentParser:
    """The argument parser."""
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Compare a SLURM allocation account (or all of an offering's) with what "
        "Waldur and its periodic usage policy ask for, and print the sacctmgr commands "
        "that would bring SLURM in line.",
        epilog="Exit status: 0 all OK, 1 mismatches found, 2 could not diagnose. "
        "With --check-config: 0 the configuration is usable, 1 it has errors.",
    )
    ap.add_argument("account", nargs="?", help="SLURM account name (the resource's backend_id)")
    ap.add_argument(
        "-c",
        "--config",
        default=DEFAULT_CONFIG,
        help="agent configuration file (default: %(default)s)",
    )
    ap.add_argument(
        "--check-config",
        action="store_true",
        help="only check the configuration file: every SLURM offering as the agent loads "
        "it, every problem with its key path and what to do (no SLURM, no Waldur)",
    )
    ap.add_argument("--offering-uuid", help="the SLURM offering (needed when several)")
    ap.add_argument("--all", action="store_true", help="check every allocation of the offering")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("-v", "--verbose", action="store_true", help="unit conversions, reasons")
    ap.add_argument("--no-color", action="store_true", help="no colour (also NO_COLOR=1)")
    ap.add_argument("--fix", action="store_true", help="apply the remediation commands")
    ap.add_argument("--yes", action="store_true", help="with --fix: apply without asking")
    return ap


def colour_wanted(args: argparse.Namespace, stream: TextIO) -> bool:
    """Colour only on a terminal, never with --no-color or a non-empty NO_COLOR."""
    return stream.isatty() and not args.no_color and not os.environ.get("NO_COLOR")


def logs_to_stderr(verbose: bool) -> None:
    """The framework's JSON log lines, on stderr: INFO with -v, else warnings only.

    ``WALDUR_SITE_AGENT_LOG_LEVEL`` overrides both. Called before the configuration is
    loaded (so the framework's warnings while loading come out as JSON too, not as
    Python dicts) and again after it (loading points the framework's handler at stdout).
    """
    configure_logger(logging.getLevelName(logging.INFO if verbose else logging.WARNING))
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    apply_env_log_level()


def ask(steps: list[Step]) -> bool:
    """Ask on the terminal whether to run the commands printed above."""
    noun = "command" if len(steps) == 1 else "commands"
    sys.stdout.write(f"\nApply the {len(steps)} {noun} above? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in {"y", "yes"}


def exit_code(report: Report) -> int:
    """0 when everything matches (after the fix, if one ran), else 1."""
    final = report.after_fix or report
    return EXIT_MISMATCH if final.overall == MISMATCH else EXIT_OK


def _fail(reason: str, as_json: bool) -> int:
    sys.stderr.write(f"{PROG}: could not diagnose: {reason}\n")
    if as_json:
        sys.stdout.write(json.dumps(error_document(reason), indent=2) + "\n")
    return EXIT_ERROR


def params_from(args: argparse.Namespace) -> Params:
    """Check the combination of options and map them to ``Params``."""
    if args.all and args.account:
        raise DiagnoseError("give an account name or --all, not both")
    if not args.all and not args.account:
        raise DiagnoseError("give an account name, or --all for every allocation")
    if args.yes and not args.fix:
        raise DiagnoseError("--yes only goes with --fix")
    if args.fix and args.json and not args.yes:
        raise DiagnoseError("--fix with --json cannot ask: add --yes")
    return Params(
        config=Path(args.config),
        account=args.account,
        all_accounts=args.all,
        offering_uuid=args.offering_uuid,
        fix=args.fix,
        yes=args.yes,
    )


def _write(lines: list[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def check_configuration(args: argparse.Namespace) -> int:
    """``--check-config``: print every problem of the file; 0 usable, 1 not."""
    others = [
        flag
        for flag, given in (
            ("ACCOUNT", args.account),
            ("--all", args.all),
            ("--json", args.json),
            ("--fix", args.fix),
            ("--yes", args.yes),
            ("--offering-uuid", args.offering_uuid),
        )
        if given
    ]
    if others:
        sys.stderr.write(f"{PROG}: --check-config takes only -c FILE, not {', '.join(others)}\n")
        return EXIT_ERROR
    path = Path(args.config)
    result = config_check.check(path)
    _write(config_check.render(path, result))
    return EXIT_OK if result.ok else EXIT_MISMATCH


def main(argv: list[str] | None = None) -> int:
    """Run the diagnostic; return the exit status."""
    args = parser().parse_args(argv)
    if args.check_config:
        return check_configuration(args)
    style = Style(colour_wanted(args, sys.stdout))
    try:
        params = params_from(args)
        logs_to_stderr(args.verbose)
        configuration = load(params.config)
        logs_to_stderr(args.verbose)
        service = DiagnoseService(params, configuration)
        report = service.diagnose()
        if not args.json:
            _write(render(report, style, args.verbose))
        if params.fix:
            report = service.fix(report, ask)
            if not args.json:
                _write(render_fix(report, style, args.verbose))
    except DiagnoseError as err:
        return _fail(str(err), args.json)
    if args.json:
        _write([json.dumps(report.to_json(), indent=2)])
    return exit_code(report)
