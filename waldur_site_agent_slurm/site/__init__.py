"""Host-side features: what the agent does on the head node besides talking to SLURM."""
