"""SLURM 22.05's slurmdbd and orphaned associations: the crash, and the reads that survive it.

On a stack of its own (``REAL_SLURM_INSTANCE``, never the default one: it kills that
stack's slurmdbd and resets its database), for ``--duration`` seconds per mode:

* a racer plays two agent processes at once, round after round: ``add account A``,
  then ``add user U Account=A`` (membership_sync adding a member) while
  ``delete account A`` runs (order_process terminating the allocation). A round whose
  user association outlives its account leaves an orphan (README, "SLURM 22.05's
  slurmdbd and orphaned associations");
* a reader loops the agent's association reads: in mode ``old`` the commands the client
  ran before (the plain ``show assoc``, ``show assoc format=Account,User,GrpSubmitJobs``,
  ``list user``), in mode ``new`` the client's own (``snapshot``, ``submit_limits``,
  ``user_defaults``). When slurmdbd dies, it is counted and started again.

    REAL_SLURM_INSTANCE=dbd python bench/slurmdbd_orphans.py --version 22.05 --duration 60

Each mode starts on a clean database (``scripts/real-slurm.sh reset``) and the stack is
reset again at the end. Prints rounds, orphans left, reads and slurmdbd deaths per mode.
Needs root.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.exports import exports  # noqa: E402
from waldur_site_agent_slurm.errors import SlurmError  # noqa: E402
from waldur_site_agent_slurm.slurm import parser  # noqa: E402
from waldur_site_agent_slurm.slurm.client import SlurmClient  # noqa: E402
from waldur_site_agent_slurm.slurm.runner import CommandRunner  # noqa: E402

SCRIPT = ROOT / "scripts" / "real-slurm.sh"
USER = "slurmtest3"


class Stack:
    """The own stack: its commands, slurmdbd's PID file, and a lock around restarts."""

    def __init__(self, version: str) -> None:
        self.version = version
        env = exports(self.script("env").stdout)
        self.bin, self.cluster = env["REAL_SLURM_BIN"], env["REAL_SLURM_CLUSTER"]
        self.pid_file, self.exe = Path(env["REAL_SLURMDBD_PID_FILE"]), env["REAL_SLURMDBD_EXE"]
        self.restart = threading.Lock()
        self.deaths = 0

    def script(self, verb: str) -> subprocess.CompletedProcess[str]:
        argv = ["bash", str(SCRIPT), verb, self.version]
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300)

    def sacctmgr(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [f"{self.bin}/sacctmgr", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)

    def slurmdbd_alive(self) -> bool:
        try:
            pid = int(self.pid_file.read_text().strip())
            return os.readlink(f"/proc/{pid}/exe") == self.exe
        except (OSError, ValueError):
            return False

    def revive_if_dead(self) -> None:
        """Start slurmdbd again when it died (counted once per death)."""
        with self.restart:
            time.sleep(0.3)  # a dying slurmdbd may still hold its PID file a moment
            if not self.slurmdbd_alive():
                self.deaths += 1
                self.script("up")


def race(stack: Stack, deadline: float) -> int:
    """Rounds of add user racing delete account until ``deadline``; the number of rounds."""
    rounds = 0
    while time.monotonic() < deadline:
        account = f"orph{os.getpid()}x{rounds}"
        cluster = f"Cluster={stack.cluster}"
        where = ["where", f"name={account}", f"cluster={stack.cluster}"]
        stack.sacctmgr("-i", "add", "account", account, "Parent=root", cluster)
        adding = subprocess.Popen(
            [f"{stack.bin}/sacctmgr", "-i", "add", "user", USER, f"Account={account}", cluster],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.05)
        stack.sacctmgr("-i", "delete", "account", *where)
        adding.wait(timeout=120)
        rounds += 1
    return rounds


def old_reads(stack: Stack) -> bool:
    """The reads of the client before this fix; True when all three answered."""
    where = ["where", f"cluster={stack.cluster}"]
    reads = [
        ["show", "assoc", *where, "format=" + ",".join(parser.ASSOC_FIELDS)],
        ["show", "assoc", *where, "format=" + ",".join(parser.SUBMIT_FIELDS)],
        ["list", "user", "where", f"name=root,{USER}", *where[1:], "format=User,DefaultAccount"],
    ]
    return all(stack.sacctmgr("--parsable2", "--noheader", *r).returncode == 0 for r in reads)


def new_reads(stack: Stack) -> bool:
    """The client's reads: snapshot, submit_limits, user_defaults; True when all answered."""
    client = SlurmClient(CommandRunner(bin_path=stack.bin), cluster_name=stack.cluster)
    try:
        client.snapshot()
        client.submit_limits()
        client.user_defaults(["root", USER])
    except SlurmError:
        return False
    return True


def orphans(stack: Stack) -> int:
    """User associations whose account has no association of its own (the client's read)."""
    client = SlurmClient(CommandRunner(bin_path=stack.bin), cluster_name=stack.cluster)
    snapshot = client.snapshot()
    return sum(1 for name in snapshot.user_accounts.get(USER, ()) if not snapshot.account(name))


def run_mode(stack: Stack, mode: str, duration: float) -> str:
    stack.script("reset")
    stack.deaths = 0
    deadline = time.monotonic() + duration
    rounds: list[int] = []
    racer = threading.Thread(target=lambda: rounds.append(race(stack, deadline)))
    racer.start()
    reads = failed = 0
    read = old_reads if mode == "old" else new_reads
    while time.monotonic() < deadline:
        reads += 1
        if not read(stack):
            failed += 1
            stack.revive_if_dead()
    racer.join()
    stack.revive_if_dead()
    left = orphans(stack)
    return (
        f"{mode}: {rounds[0]} race rounds, {left} orphaned association(s) left; "
        f"{reads} read rounds, {failed} failed; slurmdbd died {stack.deaths} time(s)"
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--version", default="22.05", choices=("22.05", "24.11"))
    args.add_argument("--duration", type=float, default=60, help="seconds per mode")
    args.add_argument("--modes", default="new,old", help="new, old or both (comma-separated)")
    options = args.parse_args()
    if not os.environ.get("REAL_SLURM_INSTANCE"):
        sys.exit("set REAL_SLURM_INSTANCE: this kills slurmdbd and resets the stack's database")
    stack = Stack(options.version)
    stack.script("up")
    try:
        for mode in options.modes.split(","):
            print(run_mode(stack, mode, options.duration), flush=True)
    finally:
        stack.script("reset")


if __name__ == "__main__":
    main()
