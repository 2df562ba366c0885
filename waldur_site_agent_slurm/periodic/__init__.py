"""Waldur's periodic usage policy.

The message and its validation (settings), the plan against the association (plan), the
service applying it (service), state on disk (state), billing periods and the clock.
"""
