"""HR feed services for the API and the CLI: reading a channel, listing runs and changes.

Running a feed is :mod:`idgov.lifecycle.feed`; this module reads what each channel brings
and hands it over, and answers the questions about runs."""

from __future__ import annotations

import uuid
from typing import IO

from sqlalchemy.orm import Session

from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.lifecycle import csvfeed, feed, jsonfeed, repository
from idgov.lifecycle.feed import Progress
from idgov.lifecycle.schemas import FeedChangeFilter, FeedRunFilter
from idgov.models.hr import FeedChange, FeedRun, HrSource
from idgov.types import Actor


def _mapping(source: HrSource) -> dict[str, str]:
    return {k: str(v) for k, v in (source.column_mapping or {}).items()}


def import_csv(session: Session, *, source_id: uuid.UUID, stream: IO[bytes],
               mode: str | None, channel: str, file_name: str | None, actor: Actor,
               clock: Clock, progress: Progress | None = None) -> FeedRun:
    """Read a CSV file of ``source_id`` and run it (``mode`` defaults to the source's).
    A file whose header does not fit the mapping raises FeedFormatError (nothing read)."""
    source = get_or_404(session, HrSource, source_id, what="HR source")
    parsed, digest = csvfeed.parse_csv_stream(stream, mapping=_mapping(source))
    return feed.run_feed(session, source=source, parsed=parsed,
                         mode=mode or source.default_mode, channel=channel,
                         file_name=file_name, file_sha256=digest, actor=actor, clock=clock,
                         progress=progress)


def push(session: Session, *, source_id: uuid.UUID, body: jsonfeed.PushBody, actor: Actor,
         clock: Clock) -> FeedRun:
    """Run a JSON push of worker records or events."""
    source = get_or_404(session, HrSource, source_id, what="HR source")
    parsed, mode = jsonfeed.parse_push(body, mapping=_mapping(source),
                                       default_mode=source.default_mode)
    return feed.run_feed(session, source=source, parsed=parsed, mode=mode, channel="push",
                         actor=actor, clock=clock)


def list_runs(session: Session, *, filters: FeedRunFilter) -> Page[FeedRun]:
    stmt = repository.runs_query(source_id=filters.source_id, state=filters.state)
    return paginate(session, stmt, FeedRun, limit=filters.limit, cursor=filters.cursor)


def get_run(session: Session, *, run_id: uuid.UUID) -> FeedRun:
    return get_or_404(session, FeedRun, run_id, what="feed run")


def list_changes(session: Session, *, run_id: uuid.UUID,
                 filters: FeedChangeFilter) -> Page[FeedChange]:
    """A run's changes: what it applied, or (held) what it would apply."""
    get_run(session, run_id=run_id)
    stmt = repository.changes_query(run_id, kind=filters.kind)
    return paginate(session, stmt, FeedChange, limit=filters.limit, cursor=filters.cursor)
