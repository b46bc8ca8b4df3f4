"""The customers page's "Update index now" button: a sync started from a request, in a background
thread, so the request answers at once. `manage.py sync_customers --every` remains the way to
keep the index fresh; this is for someone who needs a customer created a minute ago."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from threading import Thread

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from customers import wiring
from customers.index import search as index_search
from customers.index import sync as index_sync
from customers.models import SyncRun

logger = logging.getLogger(__name__)

THREAD_NAME = "index-sync-from-page"
# Every page shows the index's state: read from the shared cache, so a page view costs no
# query for it. A sync from the sidecar shows within this many seconds.
STATE_CACHE_KEY = "customer-index:state:v2"
STATE_CACHE_SECONDS = 10


@dataclass(frozen=True, slots=True)
class IndexState:
    synced_at: datetime | None  # when the index's sync finished; None: no sync has run
    running: bool  # a sync (from any instance) is running now
    # What that sync left in the index; None before the first sync (or one before 0015).
    active_customers: int | None = None
    archived_customers: int | None = None


def state() -> IndexState:
    cached = cache.get(STATE_CACHE_KEY)
    if isinstance(cached, IndexState):
        return cached
    last = index_search.last_successful_sync()
    synced_at = (last.finished_at or last.started_at) if last is not None else None
    fresh = IndexState(
        synced_at=synced_at,
        running=is_running(),
        active_customers=last.active_customers if last is not None else None,
        archived_customers=last.archived_customers if last is not None else None,
    )
    cache.set(STATE_CACHE_KEY, fresh, STATE_CACHE_SECONDS)
    return fresh


def is_running() -> bool:
    """Whether a sync (from any instance) is running now: one marked running whose heartbeat
    is recent. A run that died without finishing stops counting after STALE_AFTER."""
    recent = timezone.now() - index_sync.STALE_AFTER
    return SyncRun.objects.filter(
        outcome=SyncRun.Outcome.RUNNING, heartbeat_at__gte=recent
    ).exists()


def start_in_background() -> Thread:
    """Start a sync in a daemon thread and return it. Another sync that took the lock in
    the meantime is logged, not raised: the page already said one was starting."""
    thread = Thread(target=_sync, name=THREAD_NAME, daemon=True)
    thread.start()
    cache.delete(STATE_CACHE_KEY)
    return thread


def _sync() -> None:
    try:
        run = index_sync.sync(wiring.get_client())
        if run.outcome != SyncRun.Outcome.SUCCEEDED:
            logger.warning("Customer index sync from the page ended %s: %s", run.outcome, run.error)
    except index_sync.SyncAlreadyRunning:
        logger.info("Customer index sync from the page not started: another one is running")
    except Exception:
        logger.exception("Customer index sync from the page failed")
    finally:
        cache.delete(STATE_CACHE_KEY)
        # This thread's own database connection; nothing else would ever close it. (Never
        # inside a transaction: only a caller running this inline, as a test does, has one.)
        if not connection.in_atomic_block:
            connection.close()
