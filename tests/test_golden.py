"""Golden files: the rendered digests of seeds/ must match tests/golden/.

Regenerate after an intended change to templates or summaries with:
    DIGEST_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py
and review the diff before committing it.
"""

from __future__ import annotations

import os

import pytest

from conftest import REPO, Project
from tests.inprocess import invoke

GOLDEN = REPO / "tests" / "golden"


@pytest.mark.parametrize("extension", ["html", "md", "txt"])
def test_rendered_digest_of_the_seeds_matches_the_golden_file(project: Project, extension: str) -> None:
    result = invoke(project, "run", now="2026-11-27T07:00:00+00:00")
    assert result.returncode == 0, result.stderr
    produced = (project.out / "daily" / f"2026-11-27T070000Z.{extension}").read_text(encoding="utf-8")
    golden = GOLDEN / f"daily.{extension}"
    if os.environ.get("DIGEST_REGENERATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert produced == golden.read_text(encoding="utf-8"), f"{golden} differs; see the module docstring to regenerate"
