"""Call one home-directory hook of a real backend: ``python -m tests.real.homedir_hook CALL``.

``CALL`` is JSON: ``base`` (homedir_base_path), ``hook`` (``post_create_resource`` or
``process_existing_users``), ``users`` ([username, offering user state] pairs) and
``settings`` (more backend settings) and ``version`` (the SLURM stack of the test). The
home-directory test runs it in a private mount namespace (see
``test_users_and_homedirs_on_real_slurm.run_hook``).
"""

from __future__ import annotations

import json
import sys

from waldur_site_agent.backend.structures import BackendResourceInfo

from tests.real import conftest
from tests.real.conftest import Stack, real_backend
from tests.test_backend_commands import resource
from tests.test_users_and_homedirs import offering_user


def main(raw: str) -> None:
    call = json.loads(raw)
    conftest._current.append(Stack.describe(call["version"]))
    backend = real_backend(
        enable_user_homedir_account_creation=True,
        homedir_base_path=call["base"],
        **call["settings"],
    )
    users = call["users"]
    if call["hook"] == "post_create_resource":
        mappings = {
            f"{i:032x}": offering_user(name, state) for i, (name, state) in enumerate(users)
        }
        context = {"offering_user_mappings": mappings}
        backend.post_create_resource(BackendResourceInfo(backend_id="x"), resource(), context)
    else:
        backend.process_existing_users({name for name, _ in users})


if __name__ == "__main__":
    main(sys.argv[1])
