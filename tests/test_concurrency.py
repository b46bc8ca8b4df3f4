"""The per-person limit on expensive work running at once (customers/concurrency.py)."""

import time

import pytest

from customers import views
from customers.concurrency import Busy, acquire, expensive_work, keep, release
from customers.models import WorkSlot

# The slots are rows: shared by every worker and instance, whatever the cache.
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limit_of_two(settings):
    settings.EXPENSIVE_WORK_PER_USER = 2


def test_a_person_may_run_as_many_as_the_limit_and_no_more():
    acquire(1)
    acquire(1)
    with pytest.raises(Busy, match="You already have 2 large searches or downloads running"):
        acquire(1)


def test_a_refused_attempt_takes_no_slot():
    first = acquire(1)
    acquire(1)
    for _ in range(5):
        with pytest.raises(Busy):
            acquire(1)
    release(1, first)
    acquire(1)  # one slot was free again, not minus five
    assert WorkSlot.objects.filter(holder="1").count() == 2


def test_work_gives_back_its_own_slot_not_another_one(settings):
    # An export renewing its slot must keep it when a search beside it ends.
    export = acquire(1)
    search = acquire(1)
    keep(1, export)
    release(1, search)
    assert list(WorkSlot.objects.values_list("pk", flat=True)) == [export]
    release(2, export)  # another person's release leaves it too
    assert WorkSlot.objects.filter(pk=export).exists()


def test_finished_work_frees_its_slot():
    with expensive_work(1), expensive_work(1), pytest.raises(Busy):
        acquire(1)
    acquire(1)
    acquire(1)


def test_work_that_fails_frees_its_slot_too():
    with pytest.raises(RuntimeError), expensive_work(1), expensive_work(1):
        raise RuntimeError("Metronome went away")
    acquire(1)
    acquire(1)


def test_one_persons_work_never_blocks_another():
    acquire(1)
    acquire(1)
    acquire(2)
    acquire(2)


def test_slots_expire_on_their_own_so_a_dead_process_cannot_lock_anyone_out(settings):
    settings.EXPENSIVE_WORK_SLOT_SECONDS = 1
    acquire(1)
    acquire(1)
    time.sleep(1.1)
    acquire(1)


# --- The views take a slot ---------------------------------------------------------------


def test_an_export_running_blocks_a_second_one_until_it_has_finished(
    finance_client, install_sandbox, settings
):
    settings.EXPENSIVE_WORK_PER_USER = 1
    install_sandbox(350)
    first = finance_client.get("/customers/export.csv")
    chunks = iter(first.streaming_content)
    next(chunks)

    refused = finance_client.get("/customers/export.csv")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    assert "large searches or downloads running" in refused.content.decode()

    for _ in chunks:
        pass
    again = finance_client.get("/customers/export.csv")
    assert again.status_code == 200
    b"".join(again.streaming_content)


def test_a_long_export_keeps_its_slot_past_the_slots_expiry(
    finance_client, install_sandbox, settings, monkeypatch
):
    # A slot's expiry is for a process that died: an export still being written, which may
    # run for PAGING_MAX_SECONDS, renews its slot, so nobody gets a third one meanwhile.
    settings.EXPENSIVE_WORK_PER_USER = 1
    settings.EXPENSIVE_WORK_SLOT_SECONDS = 1
    monkeypatch.setattr(views, "SLOT_KEPT_EVERY", 0.0)
    install_sandbox(350)
    first = finance_client.get("/customers/export.csv")
    chunks = iter(first.streaming_content)
    next(chunks)
    time.sleep(1.1)
    next(chunks)  # the export goes on: its slot is renewed

    assert finance_client.get("/customers/export.csv").status_code == 429
    for _ in chunks:
        pass
    assert not WorkSlot.objects.exists()


def test_a_pasted_id_search_waits_for_a_running_export_but_browsing_does_not(
    finance_client, install_sandbox, settings
):
    settings.EXPENSIVE_WORK_PER_USER = 1
    api = install_sandbox(350)
    export = iter(finance_client.get("/customers/export.csv").streaming_content)
    next(export)

    browsing = finance_client.get("/customers/")
    pasted = finance_client.get(f"/customers/?customer_ids={api.customers[0]['id']}")

    assert "<tr data-customer-id=" in browsing.content.decode()
    assert "large searches or downloads running" in pasted.content.decode()
    for _ in export:
        pass
