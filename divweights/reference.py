"""Deprecated alias of :mod:`divweights.testing` (removed in the next release).

The cvxpy oracle is a verification tool, not part of the weights, so it is
now named for what it does: :mod:`divweights.testing`. Import it from there::

    from divweights.testing import instance_weights, class_weights

Importing this module emits a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings

from .testing import ReferenceSolverError, class_weights, implicit_lam, instance_weights

__all__ = ["ReferenceSolverError", "class_weights", "implicit_lam", "instance_weights"]

warnings.warn(
    "divweights.reference is deprecated and will be removed in the next release; "
    "import the cvxpy oracle from divweights.testing instead",
    DeprecationWarning,
    stacklevel=2,
)
