"""Study design: power and minimum detectable effects (:mod:`evalkit.design.power`)."""

from __future__ import annotations

from evalkit.design.power import mde, plot_power, power_curve, power_table

__all__ = ["mde", "plot_power", "power_curve", "power_table"]
