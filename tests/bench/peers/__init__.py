"""Celery and Dramatiq on the same workloads as Ricochet, for the benchmark suite.

Installed from the optional ``bench`` extra (``pip install -e '.[bench]'``).
Their task modules read where to report from the environment (``marks.py``),
so one module serves every run's fresh queue names.
"""
