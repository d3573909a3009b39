"""The fair scheduler, without threads: which request's worker is called next."""

from __future__ import annotations

from collections import Counter

from bot.scheduling import FairScheduler


def targets(request_id: int, n: int) -> list[str]:
    return [f"r{request_id}-w{i}" for i in range(n)]


def dispatch(scheduler: FairScheduler[str], n: int) -> list[int]:
    order = []
    for _ in range(n):
        pick = scheduler.next_call()
        assert pick is not None
        order.append(pick[0])
    return order


def test_requests_running_side_by_side_take_even_turns() -> None:
    scheduler: FairScheduler[str] = FairScheduler(head_start=4)
    for request_id in range(1, 6):
        scheduler.admit(request_id, targets(request_id, 200))
    order = dispatch(scheduler, 1000)
    # Each was admitted 4 turns behind the one before (4 + 8 + 12 + 16 calls); from then on, every
    # five consecutive calls serve all five requests once, until they run out.
    tail = order[40:900]  # (the last of them end first, having started first)
    assert all(sorted(tail[i : i + 5]) == [1, 2, 3, 4, 5] for i in range(0, len(tail), 5))
    assert set(Counter(order).values()) == {200}


def test_a_small_request_admitted_while_big_ones_run_is_dispatched_at_once() -> None:
    scheduler: FairScheduler[str] = FairScheduler(head_start=16)
    for request_id in range(1, 6):
        scheduler.admit(request_id, targets(request_id, 200))
    dispatch(scheduler, 300)
    scheduler.admit(6, targets(6, 3))
    picks = [scheduler.next_call() for _ in range(3)]
    assert picks == [(6, "r6-w0"), (6, "r6-w1"), (6, "r6-w2")]  # its workers in their order, none behind
    after = dispatch(scheduler, 10)
    assert 6 not in after and sorted(after) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]  # then the big ones, evenly


def test_a_big_newcomer_gets_its_head_start_then_even_turns() -> None:
    scheduler: FairScheduler[str] = FairScheduler(head_start=16)
    scheduler.admit(1, targets(1, 10_000))
    dispatch(scheduler, 5000)
    scheduler.admit(2, targets(2, 10_000))
    order = dispatch(scheduler, 216)
    assert order[:16] == [2] * 16  # not 5,000 turns to catch up: the running request waits only 16 calls
    assert Counter(order[16:]) == {1: 100, 2: 100}


def test_every_target_is_handed_out_once_and_then_nothing() -> None:
    scheduler: FairScheduler[str] = FairScheduler()
    scheduler.admit(1, targets(1, 7))
    scheduler.admit(2, targets(2, 3))
    handed = []
    while (pick := scheduler.next_call()) is not None:
        handed.append(pick[1])
    assert sorted(handed) == sorted(targets(1, 7) + targets(2, 3))
    assert scheduler.remaining(1) == scheduler.remaining(2) == 0


def test_a_withdrawn_request_gets_no_more_turns_and_the_others_go_on() -> None:
    scheduler: FairScheduler[str] = FairScheduler(head_start=0)
    scheduler.admit(1, targets(1, 50))
    scheduler.admit(2, targets(2, 50))
    dispatch(scheduler, 10)
    scheduler.withdraw(1)  # its lease was lost
    assert scheduler.remaining(1) == 0
    assert set(dispatch(scheduler, 45)) == {2}
    assert scheduler.next_call() is None


def test_a_request_fed_page_by_page_is_not_done_until_its_last_page() -> None:
    scheduler: FairScheduler[str] = FairScheduler()
    scheduler.admit(1, targets(1, 3), more_coming=True)
    assert [scheduler.next_call() for _ in range(3)] == [(1, "r1-w0"), (1, "r1-w1"), (1, "r1-w2")]
    assert scheduler.next_call() is None  # waiting for its next page: nothing to hand out, but not done
    assert scheduler.ready(1) == 0 and scheduler.remaining(1) == 1
    scheduler.feed(1, ["r1-w3", "r1-w4"], more_coming=False)
    assert scheduler.ready(1) == 2
    assert dispatch(scheduler, 2) == [1, 1]
    assert scheduler.remaining(1) == 0 and scheduler.next_call() is None


def test_a_request_that_sat_out_waiting_for_a_page_rejoins_even_not_ahead() -> None:
    scheduler: FairScheduler[str] = FairScheduler(head_start=0)
    scheduler.admit(1, targets(1, 1000))
    scheduler.admit(2, targets(2, 10), more_coming=True)
    dispatch(scheduler, 20)  # request 2 runs dry after 10 turns
    assert set(dispatch(scheduler, 50)) == {1}  # meanwhile request 1 goes on alone
    scheduler.feed(2, [f"r2-w{i}" for i in range(10, 110)], more_coming=False)
    order = dispatch(scheduler, 40)
    assert Counter(order) == {1: 20, 2: 20}  # even turns from here: the 50 it sat out are not made up in a burst


def test_a_withdrawn_request_takes_no_more_pages() -> None:
    scheduler: FairScheduler[str] = FairScheduler()
    scheduler.admit(1, targets(1, 2), more_coming=True)
    scheduler.withdraw(1)
    scheduler.feed(1, targets(1, 5), more_coming=False)
    assert scheduler.remaining(1) == 0 and scheduler.next_call() is None


def test_a_request_is_admitted_once_at_a_time() -> None:
    scheduler: FairScheduler[str] = FairScheduler()
    scheduler.admit(1, targets(1, 2))
    try:
        scheduler.admit(1, targets(1, 2))
    except ValueError:
        pass
    else:
        raise AssertionError("admitted twice")
    scheduler.forget(1)
    scheduler.admit(1, targets(1, 2))  # a retry round, once the first has ended
    assert scheduler.remaining(1) == 2
