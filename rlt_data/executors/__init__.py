"""Executors: who runs a run's shards (``sharding.py``'s contract), and where.

Each module offers ``run_shards(config, command, count, prepared)`` (or, for Slurm, writes the
job that does): ``local`` runs them in this process or in ``--data-parallel-size`` processes on
this machine's GPUs; ``ray`` as Ray Core tasks on a cluster; ``slurm`` writes a job array and a
dependent merge job. Every executor ends the same way: ``merge.merge`` over the shard folders.
"""

EXECUTORS = ("local", "ray", "slurm")
