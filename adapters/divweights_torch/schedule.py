"""Burn-in and annealing of the reweighting strength.

The published training recipe keeps the weights uniform for a burn-in period
(the network first has to learn something before its losses say which labels
are noisy) and then starts with weak reweighting that is tightened linearly.
:class:`AnnealSchedule` returns, for every training step, a multiplicative
*factor* that :class:`~divweights_torch.ReweightedLoss` applies to its
strength parameter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

__all__ = ["AnnealSchedule"]


@dataclass
class AnnealSchedule:
    r"""Burn-in followed by a linear anneal of the reweighting strength.

    ``factor(step)`` is

    * ``None`` for ``step < burnin_steps``: uniform instance weights and no
      class reweighting (plain cross-entropy);
    * ``start_factor`` at ``step = burnin_steps``, moving linearly to ``1``
      over ``anneal_steps`` steps;
    * ``1`` afterwards.

    :class:`~divweights_torch.ReweightedLoss` applies the factor as
    ``temperature * factor``, ``lam * factor`` and ``delta / factor``, so a
    factor above one means *weaker* reweighting (weights closer to uniform).
    The class radius ``gamma`` is not annealed; it is only switched off
    (``0``) during the burn-in.

    The published protocol is ``AnnealSchedule(burnin_steps=4000,
    anneal_steps=3000, start_factor=10.0)``, also available as
    :meth:`published`.

    Parameters
    ----------
    burnin_steps : int, default 0
        Number of steps with uniform weights.
    anneal_steps : int, default 0
        Length of the linear anneal from ``start_factor`` to ``1`` (``0``:
        jump straight to ``1`` after the burn-in).
    start_factor : float, default 10.0
        Factor at the first step after the burn-in; ``> 0``.

    Examples
    --------
    >>> from divweights_torch import AnnealSchedule
    >>> s = AnnealSchedule(burnin_steps=2, anneal_steps=4, start_factor=10.0)
    >>> [s.factor(t) for t in range(8)]
    [None, None, 10.0, 7.75, 5.5, 3.25, 1.0, 1.0]
    >>> AnnealSchedule(**s.state_dict()) == s
    True
    """

    burnin_steps: int = 0
    anneal_steps: int = 0
    start_factor: float = 10.0

    def __post_init__(self):
        for name in ("burnin_steps", "anneal_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int; got {type(value).__name__}")
            if value < 0:
                raise ValueError(f"{name} must be >= 0; got {value}")
        f = self.start_factor
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise TypeError(f"start_factor must be a real number; got {type(f).__name__}")
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"start_factor must be finite and > 0; got {f!r}")
        self.start_factor = float(f)

    @classmethod
    def published(cls) -> AnnealSchedule:
        """The published protocol: 4000 burn-in steps, then 10x -> 1x over 3000 steps."""
        return cls(burnin_steps=4000, anneal_steps=3000, start_factor=10.0)

    def factor(self, step: int) -> float | None:
        """Strength factor at ``step`` (0-based), or ``None`` during the burn-in."""
        step = int(step)
        if step < self.burnin_steps:
            return None
        t = step - self.burnin_steps
        if t >= self.anneal_steps:
            return 1.0
        return self.start_factor + (1.0 - self.start_factor) * (t / self.anneal_steps)

    def factor_tensor(self, step: torch.Tensor, dtype: torch.dtype = torch.float32):
        """:meth:`factor` computed on the device, for a step counter held in a tensor.

        Nothing is read on the host, so the result can be used inside a
        ``torch.compile`` graph (or a CUDA graph) that serves every step of a
        run.

        Parameters
        ----------
        step : torch.Tensor
            0-d integer tensor (0-based step).
        dtype : torch.dtype, default float32
            Floating dtype of the factor.

        Returns
        -------
        active : torch.Tensor
            0-d bool, ``False`` during the burn-in (where :meth:`factor` is
            ``None``), ``True`` after.
        factor : torch.Tensor or float
            0-d tensor of ``dtype`` on ``step``'s device (during the burn-in it
            holds ``start_factor``, a valid strength factor that the caller
            discards), or the Python float ``1.0`` when the schedule has no
            anneal (then the factor is constant).  Use both with
            :meth:`divweights.Strength.scaled`: ``strength.scaled(factor, active=active)``.

        Examples
        --------
        >>> import torch
        >>> from divweights_torch import AnnealSchedule
        >>> s = AnnealSchedule(burnin_steps=2, anneal_steps=4, start_factor=10.0)
        >>> active, f = s.factor_tensor(torch.tensor(3))
        >>> bool(active), round(float(f), 4), s.factor(3)
        (True, 7.75, 7.75)
        """
        active = step >= self.burnin_steps
        if self.anneal_steps == 0:
            return active, 1.0
        t = (step - self.burnin_steps).clamp(0, self.anneal_steps).to(dtype)
        return active, t * ((1.0 - self.start_factor) / self.anneal_steps) + self.start_factor

    def state_dict(self) -> dict:
        """Plain ``dict`` of the fields (``AnnealSchedule(**d)`` rebuilds it)."""
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        """Set the fields from :meth:`state_dict`'s output (validated)."""
        new = type(self)(**state)
        self.burnin_steps, self.anneal_steps, self.start_factor = (
            new.burnin_steps,
            new.anneal_steps,
            new.start_factor,
        )
