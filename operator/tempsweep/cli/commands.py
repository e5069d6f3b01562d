"""The CLI's commands: load input, wire a context, call one engine function, print JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from tempsweep.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tempsweep.cli.input import load_policy, load_run
from tempsweep.engine import (
    CleanupContext,
    JobSourceError,
    Progress,
    RunRequest,
    StorageError,
    compute_stats,
    run_cleanup,
)
from tempsweep.engine.ports import AuditError, AuditSink, StorageProvider
from tempsweep.models import (
    CleanupPolicy,
    EffectivePolicy,
    InputError,
    OperatorSettings,
    RunPhase,
    RunStatus,
    SettingsError,
    StorageStats,
    load_settings,
    resolve_policy,
)
from tempsweep.models.effective import min_free_for
from tempsweep.models.quantities import format_bytes
from tempsweep.models.roots import volume_path_refusal

log = logging.getLogger("tempsweep")


def _fail(message: str) -> int:
    print(f"tempsweep: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _configure_logging(args: argparse.Namespace, run: str | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.log_format == "json":
        from tempsweep.telemetry.jsonlog import use_json

        use_json(policy=_policy_name_or_none(args), run=run)


def _policy_name_or_none(args: argparse.Namespace) -> str | None:
    """The policy's name for log lines, without failing here (bad input is reported by the command)."""
    try:
        return _policy_name(args)
    except InputError:
        return None


def _terminal_progress() -> Callable[[Progress], None] | None:
    """A progress line on stderr, at most a few times a second, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def report(progress: Progress) -> None:
        now = time.monotonic()
        if now - last[0] < 0.25:
            return
        last[0] = now
        sys.stderr.write(
            f"\r{progress.files_planned} planned, {progress.files_deleted} deleted, "
            f"{format_bytes(progress.bytes_freed)} freed"
        )
        sys.stderr.flush()

    return report


@contextmanager
def _context(args: argparse.Namespace) -> Iterator[tuple[CleanupContext, OperatorSettings]]:
    """Settings, policy, storage and job source from the arguments; InputError for anything wrong."""
    from tempsweep.jobs.factory import open_job_source
    from tempsweep.storage.factory import open_storage

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise InputError(str(exc)) from None
    policy_doc = load_policy(args.policy, args.path)
    try:
        policy = resolve_policy(policy_doc.metadata.name, policy_doc.spec, settings)
    except ValueError as exc:
        raise InputError(f"{args.policy}: {exc}") from None
    _check_allowed_roots(args, policy_doc, policy, settings)
    if policy.backend.volume_path is not None and not os.path.isdir(policy.backend.volume_path):
        where = "--path" if args.path else f"{args.policy}: spec.storage.volume.path"
        raise InputError(f"{where}: {policy.backend.volume_path} does not exist or is not a directory")
    try:
        storage = open_storage(policy.backend)
        _check_min_free(args, policy, storage)
        jobs = open_job_source(policy.backend)  # a database that does not answer is an unavailable source
    except (StorageError, JobSourceError) as exc:
        raise InputError(f"{args.policy}: {exc}") from None
    try:
        yield CleanupContext(policy=policy, storage=storage, jobs=jobs, progress=_terminal_progress()), settings
    finally:
        close = getattr(jobs, "close", None)
        if close:
            close()


def _check_allowed_roots(
    args: argparse.Namespace, document: CleanupPolicy, policy: EffectivePolicy, settings: OperatorSettings
) -> None:
    """The operator's allowed roots bind the CLI too, once the admin has set them on this machine.

    Only when TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS or NAMESPACE_ROOTS is set: the default root (the storage
    path) is the operator's, and the CLI has always cleaned the directory it is given. The namespace is
    the policy's ``metadata.namespace`` (``default`` without one, as the operator assumes). Offline this
    guards against mistakes; it is no security boundary (whoever runs the CLI can unset the variable).
    """
    path = policy.backend.volume_path
    if path is None or (settings.allowed_roots is None and settings.namespace_roots is None):
        return
    field = "--path" if args.path else f"{args.policy}: spec.storage.volume.path"
    refusal = volume_path_refusal(path, document.metadata.namespace or "default", settings, field=field)
    if refusal is not None:
        raise InputError(refusal)


def _check_min_free(args: argparse.Namespace, policy: EffectivePolicy, storage: StorageProvider) -> None:
    """The cluster's minFreeSpace rule offline: an explicit floor the storage can never satisfy is bad
    input (exit 2); an inherited one is not applied, with a warning (the JSON shows the effective value)."""
    size = policy.rules.capacity_bytes
    if size is None:
        usage = storage.filesystem_usage()
        size = usage.total if usage is not None else None
    if size is None:
        return
    floor = min_free_for(policy.rules, size)
    if floor.unsatisfiable:
        raise InputError(f"{args.policy}: {floor.note}")
    if floor.note:
        print(f"tempsweep: warning: {args.policy}: {floor.note}", file=sys.stderr)


def scan(args: argparse.Namespace) -> int:
    _configure_logging(args)
    try:
        with _context(args) as (ctx, _):
            try:
                stats = compute_stats(ctx)
            except StorageError as exc:
                return _fail(f"{args.policy}: {exc}")
        if args.metrics_file:
            _write_metrics_file(args, stats)
    except InputError as exc:
        return _fail(str(exc))
    print(json.dumps(stats.to_wire(), indent=2))
    return EXIT_FAILED if stats.job_source_error else EXIT_OK


def _write_metrics_file(args: argparse.Namespace, stats: StorageStats) -> None:
    """The scan's figures for node-exporter's textfile collector; an unwritable path is bad input."""
    from tempsweep.telemetry.textfile import write_stats_file

    document = load_policy(args.policy, args.path)
    namespace = document.metadata.namespace or "default"
    try:
        write_stats_file(args.metrics_file, namespace, document.metadata.name, stats, datetime.now(UTC))
    except OSError as exc:
        raise InputError(f"--metrics-file {args.metrics_file}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    try:
        run_doc = load_run(args.filename)
        _configure_logging(args, run=run_doc.metadata.name)
        policy_name = _policy_name(args)
        if run_doc.spec.policy_ref.name != policy_name:
            raise InputError(
                f"{args.filename}: spec.policyRef.name is {run_doc.spec.policy_ref.name!r} but "
                f"{args.policy} is policy {policy_name!r}"
            )
        request = RunRequest.from_spec(run_doc.spec, dry_run=args.dry_run)
        with _context(args) as (ctx, settings):
            problem = ctx.policy.run_id_problem(request.job_id, request.chunk_id)
            if problem:
                raise InputError(f"{args.filename}: {problem}")
            ctx.audit = _audit(args, ctx, run_doc.metadata.name, request)
            status = run_cleanup(ctx, request)
            _record_history(ctx, run_doc.metadata.name, status)
    except InputError as exc:
        return _fail(str(exc))
    if ctx.progress is not None:
        sys.stderr.write("\n")
    if settings.log_cleanup_stats:
        print(f"tempsweep: {status.message}", file=sys.stderr)
    print(json.dumps(status.to_wire(), indent=2))
    return EXIT_OK if status.phase is RunPhase.SUCCEEDED else EXIT_FAILED


def _audit(args: argparse.Namespace, ctx: CleanupContext, run_name: str, request: RunRequest) -> AuditSink | None:
    """The policy's audit sink (spec.audit), checked before the run: a record that cannot be written is bad
    input here (exit 2, nothing deleted), as the operator refuses such a run."""
    from tempsweep.storage.audit import AuditLabels, open_audit

    namespace = load_policy(args.policy, args.path).metadata.namespace or "default"
    audit = open_audit(ctx.policy.backend, AuditLabels(namespace, ctx.policy.name, run_name, request.type.value))
    if audit is not None:
        try:
            audit.open()
        except AuditError as exc:
            raise InputError(f"{args.policy}: {exc}") from None
        finally:
            audit.close()
    return audit


def _record_history(ctx: CleanupContext, run_name: str, status: RunStatus) -> None:
    """Append the run to the policy's history table when it has one; a failure is only a warning."""
    from tempsweep.history import open_history

    history = open_history(ctx.policy.backend, ctx.policy.name)
    problem = history.record(run_name, status) if history is not None else None
    if problem:
        print(f"tempsweep: warning: {problem}", file=sys.stderr)


def _policy_name(args: argparse.Namespace) -> str:
    return load_policy(args.policy, args.path).metadata.name


def crds(args: argparse.Namespace) -> int:
    from tempsweep.cli.crdfiles import write_crds

    changed = write_crds(args.output, check=args.check)
    if args.check and changed:
        print(f"tempsweep: {', '.join(changed)} differ from the models; run `make crds`", file=sys.stderr)
        return EXIT_FAILED
    for name in changed:
        print(f"wrote {name}")
    return EXIT_OK


def operator(args: argparse.Namespace) -> int:
    try:
        from tempsweep.controller.main import run_operator
    except ImportError as exc:  # pragma: no cover
        return _fail(f"the operator is not available in this build: {exc}")
    if args.priority is not None and args.peering is None:
        return _fail("--priority only means something with --peering NAME (a standalone operator has no peers)")
    problem = _sharding_problem(args)
    if problem:
        return _fail(problem)
    return run_operator(
        namespaces=args.namespace,
        liveness=args.liveness,
        peering=args.peering,
        priority=args.priority or 0,
        log_format=args.log_format,
        metrics_port=args.metrics_port,
        sharding=(args.shards, args.shard_lease_seconds or 15) if args.shards is not None else None,
    )


def _sharding_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the sharding flags, in one line; None when nothing is."""
    if args.shards is None:
        return "--shard-lease-seconds only means something with --shards N" if args.shard_lease_seconds else None
    if not 1 <= args.shards <= 1024:
        return f"--shards: {args.shards} must be between 1 and 1024"
    if args.shard_lease_seconds is not None and not 3 <= args.shard_lease_seconds <= 300:
        return f"--shard-lease-seconds: {args.shard_lease_seconds} must be between 3 and 300"
    if args.peering is not None:
        return "--shards and --peering exclude each other: shards spread the work, peering keeps one replica active"
    if not os.environ.get("POD_NAMESPACE") and not args.namespace:  # controller.shard_handlers.NAMESPACE_VARIABLE
        return "--shards needs a namespace for its Leases: set POD_NAMESPACE (the Deployment does) or --namespace"
    return None
