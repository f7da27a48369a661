"""Study design: power and minimum detectable effects (:mod:`evalkit.design.power`)."""

from __future__ import annotations

from evalkit.design.power import mde, power_curve, power_table

__all__ = ["mde", "power_curve", "power_table"]  # chart: evalkit.viz.power.plot_power
