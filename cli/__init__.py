"""modelrouter's application over the :mod:`modelrouter` library, one folder per job.

- ``app``, ``options``, ``exits``, ``render``, ``tooling``: the command shell (Typer, rich).
- :mod:`modelrouter.batch`: the batch engine (readers/writers, ordered scoring, rejects,
  datasets, the local and Dask engines); importable without Typer or rich.
- :mod:`modelrouter.tools`: model tooling (convert, parity, inspect, compare).

Imports point one way: shell → batch/tools → the router library.
"""
