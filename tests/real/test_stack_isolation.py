"""Each real SLURM of scripts/real-slurm.sh is the version it says, apart from the host.

The parametrisation is only worth something if ``[slurm-22.05]`` and ``[slurm-24.11]``
really talk to two different SLURMs: the commands report the stack's version, its own
cluster and ports (none a SLURM on the host would use), and its daemons run inside its
chroot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.real.conftest import run, stack

pytestmark = pytest.mark.real_slurm

HOST_PORTS = {"6817", "6818", "6819"}  # a SLURM installed on the host itself


def test_the_commands_are_the_stacks_version_with_its_own_config_and_cluster() -> None:
    current = stack()

    assert run("sinfo", "--version").stdout.split()[-1].startswith(f"{current.version}.")
    config = dict(
        (key.strip(), value.strip())
        for key, _, value in (
            line.partition("=") for line in run("scontrol", "show", "config").stdout.splitlines()
        )
    )
    assert config["ClusterName"] == current.cluster
    ports = {config["SlurmctldPort"], config["SlurmdPort"], config["AccountingStoragePort"]}
    assert not ports & HOST_PORTS
    clusters = run("sacctmgr", "-n", "-P", "show", "cluster", "format=Cluster,ControlPort").stdout
    assert clusters.split() == [f"{current.cluster}|{config['SlurmctldPort']}"]


def test_the_stacks_daemons_run_inside_its_chroot() -> None:
    current = stack()
    run_dir = current.slurmdbd_pid_file.parent  # <root>/run/slurm
    root = run_dir.parents[1]

    for daemon in ("slurmdbd", "slurmctld", "slurmd"):
        pid = int((run_dir / f"{daemon}.pid").read_text().strip())
        assert Path(os.readlink(f"/proc/{pid}/root")) == root, daemon
        assert Path(os.readlink(f"/proc/{pid}/exe")).is_relative_to(root), daemon
    assert os.readlink(f"/proc/{int(current.slurmdbd_pid_file.read_text())}/exe") == (
        current.slurmdbd_exe
    )
