"""Scheduled window jobs: runs and leases, window profiling, drift results, baselines, upkeep.

The ``runs`` table is the truth (see :mod:`monitor.jobs.runs`); APScheduler only ticks
(:mod:`monitor.jobs.scheduler`). One tick is a list of steps (:mod:`monitor.jobs.tick`).
"""
