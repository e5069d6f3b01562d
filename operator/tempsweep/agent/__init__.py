"""``tempsweep agent``: the node agent that cleans node-scoped policies on its own node (one per node, a DaemonSet).

A policy of ``storage.volume.scope: Node`` names node-local storage (hostPath, local PersistentVolumes)
that no Deployment can reach. The agent on each node runs the very engine, timers and safety rules the
operator runs -- ``controller.runtime`` opens the storage under the same allowed roots,
``controller.schedule.due_work`` decides what is due, ``controller.cleanups.run_locked`` runs the engine
-- for the policies whose ``nodeSelector`` its Node's labels match, and only on its own node.

It is not a Kopf operator: it needs no finalizers, annotations or events, so it needs far less RBAC
(read policies, runs and its own Node; apply status). Each tick it lists the policies and runs and
acts on what is due; what it learned goes to its own entry of ``status.nodes`` by server-side apply
with the field manager ``tempsweep-agent/NODE`` (``controller.node_api``), so agents never overwrite
each other or the operator, which writes the aggregate (``controller.node_policies``) and the run's own
phase (``controller.node_runs``).

Modules: ``loop`` (the agent's state and its tick), ``policies`` (one policy's due work on this node),
``runs`` (one CleanupRun's part on this node, claimed per node), ``entries`` (this node's entries),
``main`` (start, liveness, stop).
"""
