"""``waldur_site_diagnose_slurm_account``: SLURM against Waldur for one allocation or all."""
