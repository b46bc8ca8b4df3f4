"""Fixtures the Metronome client's tests share."""

import pytest


@pytest.fixture
def sleeps() -> list[float]:
    """The waits a client chose, recorded instead of spent: pass `sleep=sleeps.append`."""
    return []
