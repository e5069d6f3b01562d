"""The Kubernetes operator: thin Kopf handlers over the same engine the CLI uses.

Modules, one job each: ``policies`` and ``run_handlers`` register the Kopf handlers and do nothing
else; ``policy_work`` is what a policy's handlers do (validate, tick), ``schedule.due_work`` decides
what a tick has to do, ``policy_status`` and ``run_status`` build the typed status, ``writer`` writes
it (the only status writer), ``runtime`` turns a CleanupPolicy object into storage, job source and
history recorder, ``cleanups`` runs the engine under the per-storage lock, ``run_queue`` holds each
storage's queue of CleanupRuns and its thread, ``run_execution`` claims and executes one queued run,
``state`` is the operator's state in Kopf's memo (nothing module-level), ``kube`` the few API calls of
our own.
With ``--shards``, ``shards`` (pure: which shard, whose share), ``leases`` (the Lease API calls),
``shard_keeper`` (the Leases this replica holds, renewed in a loop) and ``shard_handlers`` (Kopf's side)
decide which replica works which policy; the handlers only ask ``state.shards.owns(key)``.

The walk of one CleanupRun, and the form its data has at each hop:

1. ``run_handlers.run_created`` gets Kopf's body and ``meta``; ``ObjectRef`` names the run, and the
   ``OperatorState`` comes from the memo. ``admit_run`` checks it (``run_execution.check_run``) and
   submits a ``QueuedRun`` to ``state.queues``; the handler returns, and the run waits as Pending.
2. In its storage's thread, ``QueuedRun.execute`` claims the run (``claims``) and makes its
   ``RunReporter``, which writes ``CleanupRunStatus(phase=Running)`` through the run's ``StatusWriter``.
3. ``prepare_run`` parses the body into ``CleanupRun`` (models), reads the policy object and
   ``runtime.build_runtime`` resolves it into an ``EffectivePolicy`` (rules, schedule, backend) and
   opens a ``StorageProvider``, a ``JobSource`` (or an ``UnavailableJobSource``) and a
   ``HistoryRecorder``: a ``PolicyRuntime``. The spec becomes the engine's ``RunRequest``.
4. ``cleanups.run_locked`` takes the storage's lock and calls ``engine.run_cleanup(context,
   request)``: the engine plans from the streamed scan and its applier calls
   ``StorageProvider.delete``, which re-checks each file and unlinks it (``storage.volume``). Progress
   comes back as ``Progress`` to ``RunReporter.progress`` -> ``CleanupRunStatus(progress=...)``.
5. The engine returns a ``RunStatus`` (models). ``run_locked`` hands that same object to the
   ``HistoryRecorder``; ``RunReporter.finished`` composes it unchanged into ``CleanupRunStatus``;
   ``PolicyStatus.last_cleanup`` takes it for the policy's ``lastCleanup*``. Each status model goes
   through ``status_patch`` once, to its object's ``StatusWriter``.

No hop hands data down a layer and takes it back in another form: the engine's own ``RunStatus`` is
what the run's status, the policy's status, the history row, the events and the CLI's JSON are made
from.
"""
