"""Blend-weight search: every weighting of K models' predictions on a simplex grid,
scored in one batched JAX computation; the exact optimum; plateaus, why they are
flat, and whether any difference is more than noise.

Modules: ``data`` (loading, validation), ``grid`` (simplex enumeration,
constraints, explicit lists), ``score`` (jitted sharded kernel, Gram form),
``exact`` (LP / least squares / refinement), ``stats`` (plateau, paired
bootstrap, held-out folds), ``flatness`` (why a plateau is flat), ``report``
and ``plots``, ``demo`` (the issue's three-model story), ``api`` (:func:`blend`).
"""

from jaxexp.blending.api import blend
from jaxexp.blending.demo import demo_data

__all__ = ["blend", "demo_data"]
