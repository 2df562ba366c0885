"""``waldur_slurm_standin``: serve the Waldur Mastermind stand-in from a scenario file."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from waldur_site_agent_slurm.devtools.standin.control_help import HELP

DESCRIPTION = """\
Serve a local stand-in for the Waldur Mastermind REST API, for demos and tests of
waldur-site-agent with the SLURM backend. It answers the endpoints the agent calls in
order_process, membership_sync, report and event_process modes and the historical
usage loader, from the state described in the scenario YAML (tokens, offering,
customers, projects and teams, offering users, resources, orders, STOMP queue,
periodic policies). Every answer is checked with waldur_api_client's own parsers;
an answer the client would reject becomes an HTTP 500 naming the model.

Point the agent's waldur_api_url at the printed URL.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="waldur_slurm_standin",
        description=DESCRIPTION,
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", required=True, help="scenario YAML file")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default WARNING; drift errors are always shown)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; returns the exit status."""
    args = build_parser().parse_args(argv)
    # Imported here: waldur_api_client's models take seconds to load, --help should not.
    from waldur_site_agent_slurm.devtools.standin.scenario import (  # noqa: PLC0415
        ScenarioError,
        load_scenario,
    )

    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(message)s")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        sys.stderr.write(f"waldur_slurm_standin: {err}\n")
        return 2
    from waldur_site_agent_slurm.devtools.standin.server import StandIn  # noqa: PLC0415

    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        standin = StandIn(scenario, host=args.host, port=args.port).start()
    except OSError as err:
        sys.stderr.write(f"waldur_slurm_standin: cannot listen on {args.host}:{args.port}: {err}\n")
        return 1
    sys.stdout.write(f"Waldur stand-in serving {standin.api_url}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
