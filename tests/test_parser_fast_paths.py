"""The parser's fast paths for sacct job lines keep the strict behaviour of the slow ones."""

from __future__ import annotations

from datetime import datetime

import pytest

from waldur_site_agent_slurm.errors import SlurmParseError
from waldur_site_agent_slurm.slurm import parser

LINE = "12|alloc-1|alice|COMPLETED|2026-01-31T22:00:00|2026-02-01T02:00:00|cpu=4,mem=8G"


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31T22:00+02",  # same length as sacct's times, but with a zone
        "2026-01-31T22:00:00Z",
        "2026-01-31T22:00:00+00:00",
        "2026-02-30T00:00:00",
        "2026-01-31",
    ],
)
def test_times_other_than_sacct_s_naive_shape_are_refused(text: str) -> None:
    with pytest.raises(SlurmParseError, match="Bad time"):
        parser.parse_time(text)


def test_repeated_tres_text_gives_each_record_its_own_dict() -> None:
    first, second = parser.parse_jobs([LINE, LINE])
    first.alloc_tres["cpu"] = 0
    assert second.alloc_tres == {"cpu": 4, "mem": 8192}
    assert parser.parse_tres("cpu=4,mem=8G") == {"cpu": 4, "mem": 8192}


def test_job_records_are_immutable_and_compare_by_value() -> None:
    [job] = parser.parse_jobs([LINE])
    with pytest.raises(AttributeError):
        job.account = "alloc-2"  # type: ignore[misc]
    assert job == parser.JobRecord(
        job_id="12",
        account="alloc-1",
        user="alice",
        state="COMPLETED",
        start=datetime(2026, 1, 31, 22),
        end=datetime(2026, 2, 1, 2),
        alloc_tres={"cpu": 4, "mem": 8192},
    )


def test_blank_lines_are_skipped_and_a_short_row_names_the_fields() -> None:
    assert len(list(parser.parse_jobs(["", LINE, "   "]))) == 1
    with pytest.raises(SlurmParseError, match=r"Expected 7 fields \(JobID,Account"):
        list(parser.parse_jobs(["12|alloc-1|alice"]))
