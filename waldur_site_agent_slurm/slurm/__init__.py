"""SLURM itself.

The one command runner, the output parsers, what may reach a command line, and the
client verbs built on them.
"""
