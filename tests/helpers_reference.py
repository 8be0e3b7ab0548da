"""The survey the 2026 rule data and catalog entries come from, for tests that assert each figure
against its source text: ../shared/reference/regulations-2026.md beside the checkout (CI lays
shared/ there; a bare clone elsewhere has none)."""

from __future__ import annotations

from pathlib import Path

import pytest

SURVEY = Path(__file__).resolve().parents[2] / "shared" / "reference" / "regulations-2026.md"


def survey_text(required: bool = False) -> str | None:
    """The survey's text; None when it is not beside the checkout (a test then checks the data
    alone), or, with `required`, the test is skipped saying so."""
    if SURVEY.exists():
        return SURVEY.read_text()
    if required:
        pytest.skip("the reference is not beside this checkout")
    return None
