"""Folders at scale: ``paddleface detect DIR --workers N --shard K/N --out OUT``.

``shard`` splits a file list deterministically (machines of a job array share an archive
without talking), ``manifest`` makes the output folder resumable, ``job`` runs the worker
processes (one decode thread per process feeding its engine).
"""
