"""The demo: the real site agent against the Waldur stand-in and slurm-emulator."""
