"""Smoke test of `make bench QUICK=1`: every benchmark runs end to end on tiny sizes and
writes its section with figures. Benchmarks are not tests: no time is asserted here."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SECTIONS = (
    "## The customers page",
    "### Page overhead",
    "### Throughput, 20 signed-in clients",
    "### Pasted-ID search",
    "## Paging every customer",
    "## CSV export",
    "## Customer index",
    "## The customer view",
    "### At 100 ms per API call",
    "### Page overhead at latency 0",
    "## Where the time goes: the customers page",
)


@pytest.mark.slow
def test_quick_bench_writes_every_section_with_figures(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = output.read_text(encoding="utf-8")

    for heading in SECTIONS:
        assert heading in report
    assert "Reproduce: `make bench QUICK=1`" in report
    summary = re.search(r"^## Goals at a glance: \d+ of (\d+) met$", report, re.M)
    assert summary is not None
    # 22 goals (issue 24: the page 8, the export 3, the index 4; issue 21: the 12-column
    # view 2), and the index's four again for PostgreSQL when DATABASE_URL names one.
    goals = int(summary[1])
    assert goals == (26 if os.environ.get("DATABASE_URL", "").startswith("postgres") else 22)
    # Every goal row carries a measured figure and a verdict.
    goal_rows = re.findall(r"^\| (.+?) \| (.+?) \| \*\*(met|missed)\*\* \|$", report, re.M)
    assert len(goal_rows) == 2 * goals, goal_rows  # each section's, and the summary's
    for goal, measured, _ in goal_rows:
        assert re.search(r"\d", measured), f"no figure for {goal!r}: {measured!r}"
    # A missed goal of those issue 24 left missed is explained where it is measured, with
    # figures from this run.
    explained = {
        "export via gunicorn at most 1.3x raw httpx paging": "the export within 1.3x raw paging",
        "first sync of 2,000 customers, SQLite, ≤ 2.0x paging": "a first sync within 2.0x paging",
        "page ≥ 60% of the bare view's req/s": "the page at 60% of the bare view's requests",
        "page overhead, median ≤ 12 ms": "the page's overhead within 12 ms",
    }
    for goal, _measured, outcome in goal_rows:
        if outcome == "missed" and goal in explained:
            assert f"**Missed: {explained[goal]}" in report, goal
    for note in re.findall(r"^\*\*Missed: .+?(?=^\*What it would take:\*)", report, re.M | re.S):
        assert re.search(r"\d", note), note
    assert report.count("**Missed: ") == report.count("*What it would take:*")
    # And every section's own tables hold numbers, not blanks.
    for heading in SECTIONS:
        section = report.split(heading, 1)[1].split("\n## ", 1)[0]
        assert re.search(r"^\|[^\n]*\d+\.\d[^\n]*\|$", section, re.M), heading
