"""Repository-level pytest settings, for ``pytest --doctest-modules divweights adapters`` (``make test``).

The deprecated aliases ``divweights.noise`` and ``divweights.reference`` emit a
DeprecationWarning on import and hold no doctests of their own; importing them
for doctest collection would only trigger that warning, so they are skipped.
Their behaviour is tested in ``tests/test_noise.py`` and ``tests/test_oracle.py``.
"""

collect_ignore = ["divweights/noise.py", "divweights/reference.py"]
