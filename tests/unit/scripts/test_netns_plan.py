"""The namespace harness's sizing of the kernel's neighbour table (shared by every namespace)."""

from __future__ import annotations

from pathlib import Path

from scripts.netns import compute_neighbour_entries, ensure_neighbour_table


def _thresholds(tmp_path: Path, hard: int) -> Path:
    for name, value in (("gc_thresh1", 128), ("gc_thresh2", 512), ("gc_thresh3", hard)):
        (tmp_path / name).write_text(f"{value}\n")
    return tmp_path


def test_58_zones_need_more_than_the_default_table_holds() -> None:
    assert compute_neighbour_entries(58) == 3_422 > 1_024
    assert compute_neighbour_entries(7) == 56


def test_the_table_is_raised_for_58_zones(tmp_path: Path) -> None:
    thresholds = _thresholds(tmp_path, 1024)
    assert ensure_neighbour_table(compute_neighbour_entries(58), thresholds)
    values = [int((thresholds / f"gc_thresh{i}").read_text()) for i in (1, 2, 3)]
    assert values == [3_422, 6_844, 13_688]


def test_a_table_large_enough_is_left_alone(tmp_path: Path) -> None:
    thresholds = _thresholds(tmp_path, 1024)
    assert not ensure_neighbour_table(compute_neighbour_entries(7), thresholds)
    assert (thresholds / "gc_thresh3").read_text() == "1024\n"
