"""Running a flow: plan, decide, schedule, record.

``_plan`` orders the assets, ``_prepare`` fingerprints them, ``_evaluate`` and
``_freshness`` decide what is fresh (the one decision ``run()`` and ``status()`` share),
``_execute`` with ``_ready``, ``_early`` and ``_tasks`` schedules the stale ones on an
executor, ``_record`` and ``_batch`` commit what they produced; ``_runstate`` is what a
run knows so far, ``_gcpause`` keeps the garbage collector out of the bookkeeping.
"""
