"""Benchmark harness: modelrouter against the naive pandas script (issue 4).

    .venv/bin/python -m benchmarks.run            # or: make bench

``fixtures`` builds (and caches) the synthetic data and models, ``baseline`` is the naive
analyst script, ``measure`` is the fallback timer used when ``/usr/bin/time`` is missing and
``run`` runs every scenario and prints the table.
"""
