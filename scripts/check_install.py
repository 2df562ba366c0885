"""Check an installed waldur-site-agent-slurm as a production site has it.

Run by scripts/check-install.sh with the interpreter of a fresh virtualenv in which the
package was installed without extras, from outside the checkout (so the code under test is
the installed one). Exits 1 naming every check that failed. With ``--imports-only`` it
runs the first check alone, in whatever environment runs it (tests/test_packaging.py).

1. Every module of the package imports while development-only packages are refused,
   and it was imported from the virtualenv.
2. The framework's own discovery finds our backend and schemas through the entry points.
3. The framework builds our backend from the example cluster configuration for each mode.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

# The [dev] extra: the emulator, the test tools and the diagnostic's schema validator.
DEV_ONLY = frozenset({"emulator", "pytest", "_pytest", "hypothesis", "jsonschema"})
# Modules that need an optional extra, and the package of that extra: without the extra
# they are not imported (the backend refuses the feature at start-up instead).
NEEDS_EXTRA = {"waldur_site_agent_slurm.site.ldap_client": "waldur_site_agent_ldap"}
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cluster-config.yaml"
MODES = ("order_processing_backend", "membership_sync_backend", "reporting_backend")


class DevOnlyRefused(importlib.abc.MetaPathFinder):
    """Make an import of a development-only package fail, installed or not."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: object = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in DEV_ONLY:
            raise ImportError(f"{fullname} is a development-only package", name=fullname)
        return None


def check_imports() -> list[str]:
    """Import every module of the package; return a line per module that failed."""
    import waldur_site_agent_slurm

    failures = []
    names = [waldur_site_agent_slurm.__name__]
    for module in pkgutil.walk_packages(
        waldur_site_agent_slurm.__path__, prefix=f"{waldur_site_agent_slurm.__name__}."
    ):
        names.append(module.name)
    skipped = [
        name
        for name in names
        if name in NEEDS_EXTRA and importlib.util.find_spec(NEEDS_EXTRA[name]) is None
    ]
    for name in skipped:
        print(f"not imported (its extra is not installed): {name}")
        names.remove(name)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # each failure is reported, then the next module
            failures.append(f"import {name}: {type(err).__name__}: {err}")
    imported = len(names) - len(failures)
    print(f"imported {imported} of {len(names)} modules with {sorted(DEV_ONLY)} refused")
    return failures


def check_location() -> list[str]:
    """The package comes from the virtualenv, not from a checkout on ``sys.path``."""
    import waldur_site_agent_slurm

    location = Path(waldur_site_agent_slurm.__file__).parent
    if location.is_relative_to(sys.prefix):
        return []
    return [f"the package was imported from {location}, not from {sys.prefix}"]


def check_entry_points() -> list[str]:
    """The framework's discovery resolves the ``slurm`` entry points to our classes."""
    from waldur_site_agent.common import utils
    from waldur_site_agent.common.plugin_schemas import (
        get_plugin_backend_settings_schemas,
        get_plugin_component_schemas,
    )

    from waldur_site_agent_slurm.backend import SlurmBackend
    from waldur_site_agent_slurm.schemas import SlurmBackendSettingsSchema, SlurmComponentSchema

    found = {
        "waldur_site_agent.backends": utils.BACKENDS.get("slurm", (None,))[0],
        "waldur_site_agent.backend_settings_schemas": get_plugin_backend_settings_schemas().get(
            "slurm"
        ),
        "waldur_site_agent.component_schemas": get_plugin_component_schemas().get("slurm"),
    }
    wanted = {
        "waldur_site_agent.backends": SlurmBackend,
        "waldur_site_agent.backend_settings_schemas": SlurmBackendSettingsSchema,
        "waldur_site_agent.component_schemas": SlurmComponentSchema,
    }
    failures = []
    for group, cls in wanted.items():
        if found[group] is cls:
            print(f"entry point {group}: slurm -> {cls.__module__}.{cls.__qualname__}")
        else:
            failures.append(f"entry point {group}: slurm -> {found[group]!r}, not {cls!r}")
    return failures


def check_backend_from_config() -> list[str]:
    """The framework builds our backend from the example cluster configuration."""
    from waldur_site_agent.common import utils

    from waldur_site_agent_slurm.backend import SlurmBackend

    config = utils.load_configuration(str(EXAMPLE), "check-install")
    failures = []
    for mode in MODES:
        backend, _version = utils.get_backend_for_offering(config.offerings[0], mode)
        if isinstance(backend, SlurmBackend):
            print(f"{EXAMPLE.name}: {mode} -> SlurmBackend")
        else:
            failures.append(f"{EXAMPLE.name}: {mode} built {type(backend).__name__}")
    return failures


def main(args: Sequence[str]) -> int:
    """Run the checks in order (with ``--imports-only`` the first); report every failure."""
    sys.meta_path.insert(0, DevOnlyRefused())
    failures = check_imports()
    if list(args) != ["--imports-only"]:
        failures += check_location() + check_entry_points() + check_backend_from_config()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
