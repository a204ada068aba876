"""Example workloads: user-style modules written against ``jaxexp.workload``.

Each has a config under ``configs/`` (``jaxexp sweep --config=configs/NAME.py``).
"""
