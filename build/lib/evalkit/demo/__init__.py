"""Synthetic demo world with planted, known effects (``evalkit demo-data``)."""

from evalkit.demo.world import (
    SIZES,
    World,
    WorldFiles,
    build_world,
    compute_truth,
    expected_outcomes,
    generate_world,
    load_truth,
    read_manifest,
    station_month_params,
)

__all__ = [
    "SIZES",
    "World",
    "WorldFiles",
    "build_world",
    "compute_truth",
    "expected_outcomes",
    "generate_world",
    "load_truth",
    "read_manifest",
    "station_month_params",
]
