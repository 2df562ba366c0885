"""``WALDUR_SITE_AGENT_LOG_LEVEL``: the log level asked for in the environment.

The plugin logs through the framework's logger, whose level the framework sets from the
configuration's top-level ``log_level`` (default INFO) when it loads the file. A site
debugging the plugin can instead export ``WALDUR_SITE_AGENT_LOG_LEVEL=DEBUG`` (or INFO,
WARNING, ERROR, CRITICAL): every backend the agent builds then sets the process's
console log level to it, so the plugin's DEBUG lines (each SLURM command as it runs)
appear from the next log line on. What is shipped to Waldur keeps its own level.
"""

from __future__ import annotations

import logging
import os

from waldur_site_agent.backend import logger

ENV = "WALDUR_SITE_AGENT_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def apply_env_log_level() -> None:
    """Set the root logger and its console handlers to the level of ``ENV``, if set."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return
    name = value.upper()
    if name not in LEVELS:
        logger.warning("Ignoring %s=%r: use one of %s", ENV, value, ", ".join(LEVELS))
        return
    level = logging.getLevelName(name)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:  # the console, not the log shipper's
            handler.setLevel(level)
