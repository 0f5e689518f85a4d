"""Progress lines when stderr is not a terminal: the first after a second, then every 5 s."""

from __future__ import annotations

import io

import pytest

import migrasafe.progress as progress


def _run(monkeypatch: pytest.MonkeyPatch, seconds_per_step: float, steps: int) -> list[str]:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    monkeypatch.delenv("MIGRASAFE_PROGRESS_EVERY", raising=False)
    out = io.StringIO()
    with progress.reporter("verify", stream=out) as report:
        for index in range(1, steps + 1):
            report(index, steps, f"r{index}")
            clock[0] += seconds_per_step
    return out.getvalue().splitlines()


def test_a_run_under_a_second_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, 0.1, 9) == []


def test_a_long_run_prints_a_line_every_few_seconds_with_eta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _run(monkeypatch, 1.0, 12)
    assert lines == [
        "verify: 1/12 (8%), 1.0s elapsed, ETA 11.0s, now r2",
        "verify: 6/12 (50%), 6.0s elapsed, ETA 6.0s, now r7",
        "verify: 11/12 (91%), 11.0s elapsed, ETA 1.0s, now r12",
        "verify: 12/12 done in 12.0s",
    ]


def test_durations_read_as_a_person_writes_them() -> None:
    assert [progress.duration(s) for s in (3.25, 75.3, 3725)] == ["3.2s", "1m15s", "1h02m"]
