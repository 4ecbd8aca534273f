"""The ready queue: plan order, upstreams first, pool limits."""

from kazeflow import asset
from kazeflow.running._plan import plan
from kazeflow.running._ready import PlanOrder, ReadyQueue, ready_queue


def _plan():
    @asset
    def source():
        return 1

    @asset(pool="gpu")
    def left(source):
        return source

    @asset(pool="gpu")
    def right(source):
        return source

    @asset
    def joined(left, right):
        return left + right

    return plan({a.name: a for a in (source, left, right, joined)}, ["joined"])


def test_assets_become_ready_when_their_upstreams_are_done_in_plan_order():
    queue = ReadyQueue(_plan(), {"gpu": 2})
    assert queue.take().name == "source" and queue.take() is None and not queue
    queue.done("source")
    assert [queue.take().name, queue.take().name] == ["left", "right"]
    queue.done("left")
    assert queue.take() is None  # joined still waits for right
    queue.done("right")
    assert queue.take().name == "joined"


def test_a_full_pool_holds_its_assets_back_until_one_stops():
    queue = ReadyQueue(_plan(), {})  # gpu: 1 by default
    queue.done(queue.take().name)
    first = queue.take()
    queue.started(first)
    assert queue.take() is None and queue  # the other gpu asset waits, still ready
    queue.stopped(first)
    second = queue.take()
    assert {first.name, second.name} == {"left", "right"}


def _one_at_a_time(queue):
    """The order a scheduler with one worker takes assets from ``queue``."""
    order = []
    while queue:
        item = queue.take()
        queue.started(item)
        order.append(item.name)
        queue.stopped(item)
        queue.done(item.name)
    assert queue.take() is None
    return order


def test_one_asset_at_a_time_takes_the_plan_in_order_as_the_full_queue_would():
    flow_plan = _plan()
    queue = ready_queue(flow_plan, {}, max_workers=1)
    assert isinstance(queue, PlanOrder)
    assert isinstance(ready_queue(flow_plan, {}, max_workers=2), ReadyQueue)
    assert _one_at_a_time(queue) == _one_at_a_time(ReadyQueue(flow_plan, {})) == \
        [a.name for a in flow_plan]
