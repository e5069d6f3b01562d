"""The Kubernetes operator: thin Kopf handlers over the same engine the CLI uses.

``handlers`` registers Kopf handlers and timers and does nothing else; ``runtime`` turns a
CleanupPolicy object into a ready-to-run engine context (validation, allowed roots, secrets);
``cleanups`` runs stats and cleanups under a per-volume lock; ``schedule`` decides due-ness from
times kept in status, so a restart neither skips a run nor fires every one at once.
"""
