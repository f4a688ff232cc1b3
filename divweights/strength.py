r"""The strength of the instance reweighting: ``lam``, ``delta`` or ``temperature``, parsed once.

Every entry point that computes instance weights takes its strength in one of
three forms (see :func:`~divweights.instance_weights`):

==================  ======================================================  ================  ===================
kind                meaning                                                 valid values      scaled by factor f
==================  ======================================================  ================  ===================
``"lam"``           multiplier of the penalty :math:`\lambda D(w\|u)`       ``> 0``           ``lam * f``
``"delta"``         radius of the constraint :math:`D(w\|u) \le \delta`      ``>= 0``          ``delta / f``
``"temperature"``   the published parameterisation (Alpha family, KL)       ``> 0``           ``temperature * f``
==================  ======================================================  ================  ===================

:class:`Strength` is that choice as one immutable value: :meth:`Strength.parse`
reads the three keyword arguments, applies the library's default (an exact KL
radius, :data:`~divweights.defaults.DEFAULT_DELTA`, only for ``KL()``), checks
that the divergence supports the form and that the value is valid, and
:meth:`Strength.scaled` applies a burn-in/annealing factor the way both
adapters do (``f > 1`` is weaker, ``f = 1`` the target strength).

Everything a kind needs (its validity rule, its scaling direction, its "off"
value and its description) lives in one table here, so adding a kind (for
example an adaptive radius) means one entry in that table plus the solver
hook ``_instance_<kind>`` on the divergences that support it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Literal, overload

import array_api_compat

from ._array import check_scalar
from ._inputs import detach
from .defaults import DEFAULT_DELTA
from .divergences import KL, Divergence, _check_divergence

__all__ = ["KINDS", "OFF", "Strength"]

Kind = Literal["lam", "delta", "temperature"]


@dataclass(frozen=True)
class _KindSpec:
    positive: bool  # valid values are > 0 (else >= 0)
    divide: bool  # scaled as value / factor (else value * factor)
    off: float  # the value giving uniform weights, used where a schedule is inactive
    meaning: str


#: Finite stand-in for an infinitely weak ``lam`` / ``temperature``.  A literal
#: ``inf`` is clipped to float32's largest value, whose reciprocal is subnormal
#: and flushed to zero by XLA on CPU (``-inf / lam`` then became NaN for masked
#: rows); ``1e30`` leaves every realistic loss a relative perturbation below
#: float32 resolution, so the weights are uniform.
OFF = 1e30

_SPECS: dict[str, _KindSpec] = {
    "lam": _KindSpec(positive=True, divide=False, off=OFF, meaning="penalty form (multiplier lam)"),
    "delta": _KindSpec(positive=False, divide=True, off=0.0, meaning="constraint form (radius delta)"),
    "temperature": _KindSpec(
        positive=True,
        divide=False,
        off=OFF,
        meaning="published temperature parameterisation (Alpha family and KL only)",
    ),
}

#: The kinds of strength, in the order of the keyword arguments.
KINDS: tuple[str, ...] = tuple(_SPECS)


def _is_array(x) -> bool:
    return not isinstance(x, numbers.Real) and hasattr(x, "shape")


def _check_real_or_0d(name: str, value) -> bool:
    """``value`` is a real number (not ``bool``) or a 0-d array; ``True`` for a number.

    Only the type and shape are checked, never an array's values (shared with
    the JAX adapter's ``gamma`` and ``label_smoothing`` checks)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, not bool")
    if isinstance(value, numbers.Real):
        return True
    shape = getattr(value, "shape", None)
    if shape is None:
        raise TypeError(f"{name} must be a real number or a 0-d array; got {type(value).__name__}")
    if tuple(shape) != ():
        raise ValueError(f"{name} must be a scalar (0-d); got shape {tuple(shape)}")
    return False


def _check_factor(value) -> None:
    """A schedule factor is a real number ``> 0`` (``inf`` allowed) or a 0-d array.

    Array factors are never read: they change every step, and reading a
    tensor would cost a host round-trip per step (the adapters promise none)."""
    if _check_real_or_0d("factor", value):
        check_scalar("factor", value, positive=True)


@dataclass(frozen=True)
class Strength:
    r"""One instance-weight strength: a ``kind`` and its ``value``.

    Build it with :meth:`parse` (which validates it for a divergence) or
    directly, ``Strength("delta", 0.3)`` (which validates the value, not the
    divergence).  It is immutable; :meth:`scaled` returns a new one.

    Attributes
    ----------
    kind : {"lam", "delta", "temperature"}
        Which form of the instance problem.
    value : float or 0-d array
        A Python ``float`` (numbers are converted), or a 0-d array of any
        array-API library, possibly traced (``jax.jit``) or on an accelerator.

    Notes
    -----
    What is checked, and when:

    * always: ``kind`` is known; ``value`` is a real number (not ``bool``) or
      a 0-d array;
    * when the value is known eagerly (a Python number, or a 0-d array in host
      memory that is not a tracer): not NaN, ``> 0`` for ``lam`` and
      ``temperature``, ``>= 0`` for ``delta`` (``inf`` allowed: uniform
      weights for ``lam``/``temperature``, no constraint for ``delta``);
    * skipped for traced values (``jax.jit``) and for arrays on an
      accelerator (reading them would synchronise the device every step):
      such values are used as given.

    Equality and hashing compare ``(kind, value)``; they are meaningful for
    Python-number values (arrays compare by identity at best).

    Examples
    --------
    >>> from divweights import KL, Strength, TotalVariation
    >>> Strength.parse(KL())  # the default: an exact KL radius
    Strength(kind='delta', value=0.5)
    >>> s = Strength.parse(TotalVariation(), lam=0.2)
    >>> s.as_kwargs()
    {'lam': 0.2}
    >>> s.scaled(10.0), Strength("delta", 0.5).scaled(10.0)
    (Strength(kind='lam', value=2.0), Strength(kind='delta', value=0.05))
    """

    kind: Kind
    value: Any

    def __post_init__(self):
        if self.kind not in _SPECS:
            raise ValueError(f"unknown strength kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        spec = _SPECS[self.kind]
        check_scalar(self.kind, detach(self.value), positive=spec.positive)
        if isinstance(self.value, numbers.Real) and not isinstance(self.value, float):
            object.__setattr__(self, "value", float(self.value))

    # -- construction --------------------------------------------------------
    @overload
    @classmethod
    def parse(
        cls, divergence: Divergence, *, lam=None, delta=None, temperature=None, required: bool = False
    ) -> Strength: ...

    @overload
    @classmethod
    def parse(cls, divergence: None, *, lam=None, delta=None, temperature=None, required: bool = False) -> None: ...

    @classmethod
    def parse(cls, divergence, *, lam=None, delta=None, temperature=None, required=False):
        r"""Read the ``lam`` / ``delta`` / ``temperature`` keyword arguments of a call.

        Parameters
        ----------
        divergence : Divergence or None
            The instance divergence.  ``None`` stands for "no reweighting"
            (uniform weights, the adapters' ``instance=None``): then no
            strength may be given and ``None`` is returned.
        lam, delta, temperature : float or 0-d array, optional
            At most one (exactly one when ``required``).
        required : bool, default False
            ``True`` (the core functions): one strength must be given.
            ``False`` (the adapters): with none given, ``KL()`` gets
            ``delta = DEFAULT_DELTA`` (an exact KL radius: effective sample
            size about ``n * exp(-delta)`` at any loss scale); any other
            divergence is an error, since that default is a KL radius.

        Returns
        -------
        Strength or None

        Raises
        ------
        TypeError
            ``divergence`` is not a divergence instance; a value is not a real
            number or 0-d array.
        ValueError
            Several strengths (or none when ``required``, or none for a
            divergence other than ``KL()``); a form the divergence does not
            support (``temperature`` for ``TotalVariation()``); a value out of
            range (see the class notes for what is checked under tracing).

        Examples
        --------
        >>> from divweights import Alpha, KL, Strength, TotalVariation
        >>> Strength.parse(Alpha(0.5), temperature=0.1)
        Strength(kind='temperature', value=0.1)
        >>> Strength.parse(TotalVariation())
        Traceback (most recent call last):
        ...
        ValueError: give one of lam=, delta=, temperature= for TotalVariation(): the default delta=0.5 is a KL radius and only applies to KL()
        >>> Strength.parse(KL(), required=True)
        Traceback (most recent call last):
        ...
        ValueError: exactly one of lam, delta, temperature must be given; got none
        """
        given = {k: v for k, v in (("lam", lam), ("delta", delta), ("temperature", temperature)) if v is not None}
        names = " and ".join(given) if given else "none"
        if divergence is None:
            if given:
                raise ValueError(f"{names} given without an instance divergence (uniform weights); pass a divergence")
            return None
        _check_divergence(divergence)
        if len(given) > 1 or (required and not given):
            if required:
                raise ValueError(f"exactly one of {', '.join(KINDS)} must be given; got {names}")
            raise ValueError(f"give at most one of {', '.join(KINDS)}; got {names}")
        if not given:
            if type(divergence) is not KL:
                alternatives = ", ".join(f"{k}=" for k in KINDS)
                raise ValueError(
                    f"give one of {alternatives} for {divergence!r}: the default "
                    f"delta={DEFAULT_DELTA} is a KL radius and only applies to KL()"
                )
            given = {"delta": DEFAULT_DELTA}
        ((kind, value),) = given.items()
        cls.check_supported(divergence, kind)
        return cls(kind, value)

    @staticmethod
    def check_supported(divergence: Divergence, kind: str) -> None:
        """Raise ``ValueError`` unless ``divergence`` supports the strength ``kind``.

        Examples
        --------
        >>> from divweights import SquaredL2, Strength
        >>> Strength.check_supported(SquaredL2(), "temperature")
        Traceback (most recent call last):
        ...
        ValueError: SquaredL2() does not support temperature= for instance weights: the published temperature parameterisation (Alpha family and KL only) is not defined for it; use one of lam=, delta=
        """
        if kind not in _SPECS:
            raise ValueError(f"unknown strength kind {kind!r}; expected one of {', '.join(KINDS)}")
        if kind not in divergence.instance_forms:
            alternatives = ", ".join(f"{f}=" for f in divergence.instance_forms)
            raise ValueError(
                f"{divergence!r} does not support {kind}= for instance weights: the "
                f"{_SPECS[kind].meaning} is not defined for it; use one of {alternatives}"
            )

    # -- use -------------------------------------------------------------------
    def scaled(self, factor, active=True) -> Strength:
        r"""The strength weakened by a schedule ``factor`` (``> 1`` weaker, ``1`` unchanged).

        ``lam`` and ``temperature`` are multiplied by ``factor``, ``delta`` is
        divided by it: the convention of both adapters' burn-in/annealing
        schedules.  Where ``active`` is false the strength is switched off
        (uniform weights): ``delta`` becomes ``0``, ``lam`` and
        ``temperature`` become :data:`OFF` (``1e30``, effectively infinite).

        Parameters
        ----------
        factor : float or 0-d array
            ``> 0``; ``inf`` gives uniform weights.  May be a tensor or a
            traced array: nothing is read back to the host (its value is
            checked only when it is a Python number; the scaled value is not
            checked again).
        active : bool or 0-d bool array, default True
            A traced flag selects with ``where``, so one compiled step serves
            the burn-in and the rest of training.

        Returns
        -------
        Strength
            A Python ``float`` value when ``value``, ``factor`` and ``active``
            are Python numbers; otherwise a 0-d array of their namespace.

        Examples
        --------
        >>> import numpy as np
        >>> from divweights import Strength
        >>> Strength("temperature", 0.1).scaled(5.5).value  # doctest: +ELLIPSIS
        0.55...
        >>> Strength("delta", 0.5).scaled(2.0, active=False)
        Strength(kind='delta', value=0.0)
        >>> Strength("lam", 0.5).scaled(np.asarray(2.0), active=np.asarray(True)).value
        array(1.)
        """
        _check_factor(factor)
        spec = _SPECS[self.kind]
        value = self.value / factor if spec.divide else self.value * factor
        if isinstance(active, bool):
            return self._unchecked(value if active else spec.off)
        shape = getattr(active, "shape", None)
        if shape is None or tuple(shape) != ():
            raise TypeError(f"active must be a bool or a 0-d bool array; got {active!r}")
        xp = array_api_compat.array_namespace(*(a for a in (active, value) if _is_array(a)))
        if not _is_array(value):
            info = xp.__array_namespace_info__()
            device = array_api_compat.device(active)
            dtype = info.default_dtypes(device=device)["real floating"]
            value = xp.asarray(value, dtype=dtype, device=device)
        elif not xp.isdtype(value.dtype, "real floating") or xp.finfo(value.dtype).bits < 32:
            value = xp.astype(value, xp.float32)
        off = min(spec.off, float(xp.finfo(value.dtype).max))
        return self._unchecked(xp.where(active, value, xp.full_like(value, off)))

    def _unchecked(self, value) -> Strength:
        """A strength of the same kind with ``value``, not validated again: a valid
        strength scaled by a valid factor is valid, and re-reading an array value
        would cost a host round-trip."""
        out = object.__new__(Strength)
        object.__setattr__(out, "kind", self.kind)
        object.__setattr__(out, "value", float(value) if isinstance(value, numbers.Real) else value)
        return out

    def as_kwargs(self) -> dict[str, Any]:
        """``{kind: value}``, to pass on as ``**kwargs``.

        Examples
        --------
        >>> import numpy as np
        >>> from divweights import KL, Strength, instance_weights
        >>> s = Strength.parse(KL(), lam=0.5)
        >>> np.round(instance_weights(np.array([0.2, 1.0]), KL(), **s.as_kwargs()), 3)
        array([0.832, 0.168])
        """
        return {self.kind: self.value}
