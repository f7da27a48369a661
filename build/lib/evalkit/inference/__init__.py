"""Inference for few clusters and many outcomes.

* :func:`wild_bootstrap` — wild cluster bootstrap (WCR) for TWFE coefficients
  (:mod:`evalkit.inference.wild`).
* :func:`randomization_inference` — permutation and placebo-date
  inference for any registered estimator (:mod:`evalkit.inference.randomization`; chart:
  :func:`evalkit.viz.placebo.plot_placebo`).
* :func:`adjust_pvalues`, :func:`romano_wolf` — multiple-outcome adjustments
  (:mod:`evalkit.inference.multiple`).
"""

from __future__ import annotations

from evalkit.inference.multiple import adjust_pvalues, romano_wolf
from evalkit.inference.randomization import randomization_inference
from evalkit.inference.wild import wild_bootstrap

__all__ = ["adjust_pvalues", "randomization_inference", "romano_wolf", "wild_bootstrap"]
