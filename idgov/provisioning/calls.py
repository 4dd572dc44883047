"""Calling the connectors for a batch of operations: on a few threads, grants and revokes to
one entitlement together where the connector can (grant_many / revoke_many), each
operation's outcome kept apart."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connectors.base import Connector
from connectors.errors import ConnectorError, DataError, TargetUnavailable
from idgov.config import Settings
from idgov.dayone.delivery import DeliveryOptions, deliver
from idgov.provisioning.connections import ConnectorCache, RateLimiter, Target
from idgov.provisioning.engine_base import EngineConfig, Outcome, Work, chunks

log = logging.getLogger(__name__)


def run_calls(works: Sequence[Work], *, settings: Settings, cache: ConnectorCache,
               limiter: RateLimiter, config: EngineConfig,
               finish_now: Callable[[Sequence[Work]], None]) -> list[Work]:
    """Call the targets for every work without an outcome yet, outside any transaction;
    returns the works whose outcomes are to be recorded together.

    A connector that takes several calls at once (``max_concurrency`` > 1) or grants
    together (``grant_many``) gets the batch's calls: grants to one entitlement together,
    the calls on up to ``min(parallel_calls, max_concurrency)`` threads, and the outcomes
    recorded together afterwards. Any other connector is called one operation at a time,
    each outcome recorded (``finish_now``) before the next call, so that a worker that dies
    leaves at most the operation in hand undecided. A connector that failed transiently is
    dropped (and rebuilt next time) once the application's calls are over.
    """
    together = [w for w in works if w.outcome is not None]
    day_one = DeliveryOptions.from_settings(settings)
    for work in works:
        if work.action == "deliver_access":  # what the link will need, from the settings
            work.attributes = {"link_days": day_one.link_days, "base_url": day_one.base_url}
    by_app: dict[uuid.UUID, list[Work]] = {}
    for work in works:
        if work.outcome is None:
            by_app.setdefault(work.target.application_id, []).append(work)
    for app_id, items in by_app.items():
        target = items[0].target
        try:
            connector = cache.get(target, settings)
        except Exception as error:
            failure = error if isinstance(error, ConnectorError) else _unexpected(error, target)
            for work in items:
                work.outcome = Outcome(error=failure)
            together.extend(items)
            continue
        capacity = max(1, int(getattr(connector, "max_concurrency", 1) or 1))
        if capacity == 1 and not any(callable(getattr(connector, m, None))
                                     for m in _TOGETHER.values()):
            down = _Down()
            for work in items:
                if down.is_set():
                    work.outcome = Outcome(error=_not_tried(target))
                    finish_now([work])
                    continue
                try:
                    connector = cache.get(target, settings)  # rebuilt after a failure
                except Exception as error:
                    work.outcome = Outcome(error=error if isinstance(error, ConnectorError)
                                            else _unexpected(error, target))
                else:
                    work.outcome = _call(connector, work, limiter=limiter)
                down.note(work)
                if work.outcome.error is not None and work.outcome.error.transient:
                    cache.discard(app_id)
                finish_now([work])
            continue
        units = _units(connector, items, config=config)
        threads = min(max(1, config.parallel_calls), capacity, len(units))

        batch_down = _Down()

        def run(unit: Sequence[Work], connector: Connector = connector,
                down: _Down = batch_down) -> None:
            if down.is_set():
                for work in unit:
                    work.outcome = Outcome(error=_not_tried(unit[0].target))
                return
            _call_unit(connector, unit, limiter=limiter)
            for work in unit:
                down.note(work)

        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads,
                                    thread_name_prefix="idgov-provisioning-call") as pool:
                list(pool.map(run, units))
        else:
            for unit in units:
                run(unit)
        together.extend(items)
        if any(w.outcome is not None and w.outcome.error is not None
               and w.outcome.error.transient for w in items):
            cache.discard(app_id)
    return together


_TOGETHER = {"grant": "grant_many", "revoke": "revoke_many"}
# A target that is not there (refused, down) or timed out twice is not called again within
# the batch: its remaining operations wait with it, instead of each paying a timeout. One
# timeout alone may be the operation's own; the others go on.
_TIMEOUTS_TO_STOP = 2


class _Down:
    """Whether the batch has stopped calling one target (shared by its call threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timeouts = 0
        self._down = False

    def is_set(self) -> bool:
        return self._down

    def note(self, work: Work) -> None:
        error = work.outcome.error if work.outcome is not None else None
        if error is None or not error.transient:
            return
        with self._lock:
            if error.category == "system_unavailable":
                self._down = True
            elif error.category == "timeout":
                self._timeouts += 1
                self._down = self._down or self._timeouts >= _TIMEOUTS_TO_STOP


def _not_tried(target: Target) -> TargetUnavailable:
    return TargetUnavailable(f"not tried: {target.name} did not answer earlier in this batch")


def _units(connector: Connector, items: Sequence[Work], *,
           config: EngineConfig) -> list[Sequence[Work]]:
    """The calls to make: one per operation, except grants (revocations) of one entitlement
    that the connector can make together (``grant_many``, ``revoke_many``)."""
    units: list[Sequence[Work]] = []
    together: dict[tuple[str, str], list[Work]] = {}
    for work in items:
        method = _TOGETHER.get(work.action)
        if (method is not None and config.grant_many_max >= 2 and work.ref is not None
                and work.entitlement is not None
                and callable(getattr(connector, method, None))):
            together.setdefault((work.action, work.entitlement), []).append(work)
        else:
            units.append([work])
    for group in together.values():
        if len(group) == 1:
            units.append(group)
        else:
            units.extend(chunks(group, config.grant_many_max))
    return units


def _call_unit(connector: Connector, unit: Sequence[Work], *, limiter: RateLimiter) -> None:
    """Make one call (one operation, or several grants or revocations of one entitlement
    together) and set the outcomes.

    Together: ``grant_many(pairs)`` / ``revoke_many(pairs)`` with ``(ref, entitlement)``
    pairs either returns None (all done) or one result per pair, in order, each with an
    ``error`` (None: done), or raises for the whole call. A transient failure of the whole
    call is every operation's failure (the target is not there: calling it once per
    operation would not help); any other failure of the whole call sends the operations
    again one by one (grants and revocations are idempotent), so each gets its own outcome.
    """
    if len(unit) == 1:
        unit[0].outcome = _call(connector, unit[0], limiter=limiter)
        return
    target = unit[0].target
    method = _TOGETHER[unit[0].action]
    try:
        limiter.acquire(target.application_id, target.rate_limit_per_second)
        results = getattr(connector, method)([(w.ref, w.entitlement) for w in unit])
        errors = _item_errors(results, len(unit))
    except ConnectorError as error:
        if error.transient:
            for work in unit:
                work.outcome = Outcome(error=error)
            return
        log.info("%s to %s failed (%s): one by one", method, unit[0].entitlement,
                 error.category)
    except Exception as error:
        log.warning("%s to %s: unexpected %s; one by one", method, unit[0].entitlement,
                    type(error).__name__)
    else:
        for work, item_error in zip(unit, errors, strict=True):
            work.outcome = Outcome(error=item_error)
        return
    for work in unit:
        work.outcome = _call(connector, work, limiter=limiter)


def _item_errors(results: Any, count: int) -> list[ConnectorError | None]:
    """Each item's error from what a ``*_many`` call returned (see :func:`_call_unit`)."""
    if results is None:
        return [None] * count
    items = list(results)
    if len(items) != count:
        raise TypeError(f"{len(items)} results for {count} items")
    errors: list[ConnectorError | None] = []
    for item in items:
        error = getattr(item, "error", None)
        if error is not None and not isinstance(error, ConnectorError):
            raise TypeError(f"an item's error is a {type(error).__name__}")
        errors.append(error)
    return errors


def _unexpected(error: Exception, target: Target) -> ConnectorError:
    log.warning("unexpected %s from the %s connector of %s", type(error).__name__,
                target.kind, target.name)
    return TargetUnavailable(f"unexpected {type(error).__name__} from the {target.kind} "
                             "connector")


def _call(connector: Connector, work: Work, *, limiter: RateLimiter) -> Outcome:
    """Call the target for one operation; every failure becomes a ConnectorError."""
    try:
        limiter.acquire(work.target.application_id, work.target.rate_limit_per_second)
        return Outcome(result=_dispatch(connector, work))
    except ConnectorError as error:
        return Outcome(error=error)
    except Exception as error:
        log.warning("operation %s failed unexpectedly", work.operation_id)
        return Outcome(error=_unexpected(error, work.target))


def _dispatch(connector: Connector, work: Work) -> Any:
    action, ref = work.action, work.ref
    if action == "create_account":
        assert work.spec is not None
        return connector.create_account(work.spec)
    assert ref is not None
    if action == "grant":
        assert work.entitlement is not None
        return connector.grant(ref, work.entitlement)
    if action == "revoke":
        assert work.entitlement is not None
        return connector.revoke(ref, work.entitlement)
    if action == "update_account":
        return connector.update_account(ref, work.attributes or {})
    if action == "enable_account":
        return connector.enable_account(ref)
    if action == "disable_account":
        return connector.disable_account(ref)
    if action == "delete_account":
        return connector.delete_account(ref)
    if action == "deliver_access":
        return deliver(connector, ref, DeliveryOptions(**(work.attributes or {})))
    raise DataError(f"unknown action {action!r}")
