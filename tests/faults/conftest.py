"""Fault tests reuse the end-to-end fixtures: a fresh stand-in, emulator and agent config."""

from tests.e2e.conftest import agent, standin
from tests.emulator.conftest import emulator

__all__ = ["agent", "emulator", "standin"]
