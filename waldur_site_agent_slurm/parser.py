"""Public name of the SLURM output parsers (``waldur_site_agent_slurm.parser``)."""

from waldur_site_agent_slurm.slurm.parser import (
    AssociationRecord,
    JobRecord,
    UserRecord,
    format_tres,
    parse_associations,
    parse_jobs,
    parse_names,
    parse_time,
    parse_tres,
    parse_tres_names,
    parse_users,
    split_row,
)

__all__ = [
    "AssociationRecord",
    "JobRecord",
    "UserRecord",
    "format_tres",
    "parse_associations",
    "parse_jobs",
    "parse_names",
    "parse_time",
    "parse_tres",
    "parse_tres_names",
    "parse_users",
    "split_row",
]
