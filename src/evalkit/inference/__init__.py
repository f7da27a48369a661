"""Inference for few clusters and many outcomes.

On a fitted result (its own sample and options, ``result.context``; each returns a small typed
result from :mod:`evalkit.inference.results` to attach with ``result.with_inference``):

* :func:`jackknife` — delete-one-cluster jackknife of the headline (:mod:`evalkit.inference.jackknife`).
* :func:`pretrend_test`, :func:`pretrend_permutation` — joint pre-trend tests (χ², Hotelling F,
  permutation) (:mod:`evalkit.inference.pretrend`).
* :func:`romano_wolf` — Romano–Wolf stepdown over outcomes for the headline estimator, and
  :func:`adjust_pvalues` (BH, BY, Holm, Bonferroni) (:mod:`evalkit.inference.multiple`).

On a panel:

* :func:`wild_bootstrap` — wild cluster bootstrap (WCR) for TWFE coefficients
  (:mod:`evalkit.inference.wild`).
* :func:`randomization_inference` — permutation and placebo-date
  inference for any registered estimator (:mod:`evalkit.inference.randomization`; chart:
  :func:`evalkit.viz.placebo.plot_placebo`).
"""

from __future__ import annotations

from evalkit.inference.jackknife import jackknife
from evalkit.inference.multiple import adjust_pvalues, romano_wolf
from evalkit.inference.pretrend import pretrend_permutation, pretrend_test
from evalkit.inference.randomization import randomization_inference
from evalkit.inference.results import InferenceResult, JackknifeResult, PretrendResult, RomanoWolfResult
from evalkit.inference.wild import wild_bootstrap

__all__ = ["InferenceResult", "JackknifeResult", "PretrendResult", "RomanoWolfResult", "adjust_pvalues", "jackknife",
           "pretrend_permutation", "pretrend_test", "randomization_inference", "romano_wolf", "wild_bootstrap"]
