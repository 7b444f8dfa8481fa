"""The sync client against a real hub."""

import queue
import threading
import time

import pytest

from ssehub import Client, SSEHubError, mint_token


def collect(subscription, n, timeout=15.0):
    """Reads ``n`` events in a thread; returns the queue they arrive on."""
    out: "queue.Queue" = queue.Queue()

    def run():
        try:
            for i, event in enumerate(subscription, 1):
                out.put(event)
                if i >= n:
                    break
        except Exception as e:  # surfaced to the test
            out.put(e)

    threading.Thread(target=run, daemon=True).start()
    return out


def take(q, n, timeout=15.0):
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < n:
        item = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(item, Exception):
            raise item
        events.append(item)
    return events


def test_publish_and_receive(hub):
    with Client(hub.url) as client:
        sub = client.subscribe("news")
        q = collect(sub, 2)
        hub.wait_subscribers("news")
        first = client.publish("news", "Hello, world", event="headline")
        assert first["delivered"] == 1 and isinstance(first["id"], str)
        client.publish("news", "line 1\nline 2")
        a, b = take(q, 2)
        assert (a.id, a.event, a.data) == (first["id"], "headline", "Hello, world")
        assert (b.event, b.data) == ("message", "line 1\nline 2")
        assert sub.last_event_id == b.id and not a.is_reset


def test_multi_topic_and_json(hub):
    with Client(hub.url) as client:
        q = collect(client.subscribe(["news", "weather"]), 3)
        hub.wait_subscribers("news")
        hub.wait_subscribers("weather")
        client.publish("news", {"title": "hi", "n": [1, 2]})
        client.publish("weather", "sunny")
        client.publish("sports", "not subscribed")
        both = client.publish(["news", "weather"], 42)
        assert both["delivered"] == 1  # one subscriber, however many of its topics match
        events = take(q, 3)
        assert events[0].json() == {"title": "hi", "n": [1, 2]}
        assert events[1].data == "sunny"
        assert events[2].json() == 42 and events[2].id == both["id"]


def test_publish_many_sequential_and_concurrent(hub):
    with Client(hub.url) as client:
        answers = client.publish_many([("t", str(i)) for i in range(10)])
        ids = [a["id"] for a in answers]
        assert len(set(ids)) == 10
        concurrent = client.publish_many(
            [{"topic": "t", "data": str(i), "event": "c"} for i in range(20)], concurrency=5
        )
        assert len({a["id"] for a in concurrent}) == 20
        # Everything is in the history: a subscriber from the first id replays the rest.
        events = take(collect(client.subscribe("t", last_event_id=ids[0]), 29), 29)
        assert [e.data for e in events[:9]] == [str(i) for i in range(1, 10)]
        assert sorted(int(e.data) for e in events[9:]) == list(range(20))


def test_resume_with_last_event_id(hub):
    with Client(hub.url) as client:
        ids = [client.publish("r", f"e{i}")["id"] for i in range(5)]
        events = take(collect(client.subscribe("r", last_event_id=ids[1]), 3), 3)
        assert [e.data for e in events] == ["e2", "e3", "e4"]
        assert not any(e.is_reset for e in events)


def test_reset_on_unknown_id(hub):
    with Client(hub.url) as client:
        client.publish("x", "kept")
        reset, replay = take(collect(client.subscribe("x", last_event_id="1-0"), 2), 2)
        assert reset.is_reset and reset.event == "ssehub-reset" and reset.id is None
        assert reset.json()["lastEventId"] == "1-0"
        assert reset.json()["reason"] in ("unknown", "expired")
        assert replay.data == "kept" and not replay.is_reset


def test_kill_mid_stream_and_restart_no_loss_no_duplicate(start_hub, tmp_path):
    hub = start_hub("--data-dir", str(tmp_path / "data"), "--retry", "300")
    with Client(hub.url) as client:
        sub = client.subscribe("jobs", max_delay=1.0)
        q = collect(sub, 15)
        hub.wait_subscribers("jobs")
        sent = [client.publish("jobs", f"m{i}")["id"] for i in range(5)]
        first = take(q, 5)
        hub.kill()
        hub.start()  # same port, same data dir
        # Published before the subscriber is back: it gets these by replay.
        sent += [client.publish("jobs", f"m{i}")["id"] for i in range(5, 10)]
        second = take(q, 5)
        hub.wait_subscribers("jobs")
        sent += [client.publish("jobs", f"m{i}")["id"] for i in range(10, 15)]
        third = take(q, 5)
        got = first + second + third
        assert [e.data for e in got] == [f"m{i}" for i in range(15)]
        assert [e.id for e in got] == sent
        assert not any(e.is_reset for e in got)
        assert sub.connections >= 2
        assert q.empty()


def test_closed_topic_ends_iteration(hub):
    with Client(hub.url) as client:
        sub = client.subscribe("job-1")
        done = threading.Event()
        events = []

        def run():
            events.extend(sub)
            done.set()

        threading.Thread(target=run, daemon=True).start()
        hub.wait_subscribers("job-1")
        client.publish("job-1", "50%")
        client.publish("job-1", "100%", event="done", close=True)
        assert done.wait(10)
        assert [(e.event, e.data) for e in events] == [("message", "50%"), ("done", "100%")]


def test_errors_carry_status_and_field(hub):
    with Client(hub.url) as client:
        with pytest.raises(SSEHubError) as e:
            client.publish("news", "x", event="bad\nname")
        assert e.value.status == 400
        with pytest.raises(ValueError):
            client.publish([], "x")


def test_jwt_publish(start_hub):
    hub = start_hub("--memory", "--publisher-jwt-key", "secret")
    with Client(hub.url) as anonymous:
        with pytest.raises(SSEHubError) as e:
            anonymous.publish("news", "x")
        assert e.value.status == 401
    with Client(hub.url, token=mint_token("wrong", publish=["*"])) as forged:
        with pytest.raises(SSEHubError) as e:
            forged.publish("news", "x")
        assert e.value.status == 401
    expired = mint_token("secret", publish=["*"], exp=int(time.time()) - 10)
    with Client(hub.url, token=expired) as late:
        with pytest.raises(SSEHubError) as e:
            late.publish("news", "x")
        assert e.value.status == 401
    token = mint_token("secret", publish=["news"], exp=int(time.time()) + 600)
    with Client(hub.url, token=token) as client:
        assert client.publish("news", "x")["id"]
        with pytest.raises(SSEHubError) as e:
            client.publish("other", "x")
        assert e.value.status == 403


def test_jwt_subscribe(start_hub):
    hub = start_hub("--memory", "--subscriber-jwt-key", "subsecret")
    with Client(hub.url) as anonymous:
        with pytest.raises(SSEHubError) as e:
            next(iter(anonymous.subscribe("news")))
        assert e.value.status == 401
        anonymous.publish("news", "public")  # loopback may publish without a key
        anonymous.publish("news", "secret stuff", private=True)
    token = mint_token("subsecret", subscribe=["news"])
    with Client(hub.url, token=token) as client:
        events = take(collect(client.subscribe("news", last_event_id="0-0"), 3), 3)
        assert events[0].is_reset
        assert [e.data for e in events[1:]] == ["public", "secret stuff"]


def test_retry_from_hub_is_adopted_and_backoff_grows(hub):
    from ssehub.client import _Backoff

    with Client(hub.url) as client:
        sub = client.subscribe("b")
        q = collect(sub, 1)
        hub.wait_subscribers("b")
        client.publish("b", "x")
        take(q, 1)
        assert 100 <= sub._backoff.retry_ms <= 110  # --retry 100 plus the hub's jitter
    backoff = _Backoff(max_delay=2.0)
    backoff.retry_ms = 100
    assert 0.1 <= backoff.delay() <= 0.125
    backoff.failures = 3
    assert 0.8 <= backoff.delay() <= 1.0
    backoff.failures = 10
    assert 2.0 <= backoff.delay() <= 2.5  # capped at max_delay
    backoff.retry_ms = 5000
    assert 5.0 <= backoff.delay() <= 6.25  # never below the hub's retry
    assert 7.0 <= backoff.delay(at_least=7.0) <= 8.75  # Retry-After


def test_subscribe_before_the_hub_is_up(start_hub, tmp_path):
    hub = start_hub("--data-dir", str(tmp_path / "d"), "--retry", "100")
    hub.kill()
    with Client(hub.url) as client:
        sub = client.subscribe("late", max_delay=0.5)
        q = collect(sub, 1)
        time.sleep(0.5)  # a few refused connections
        hub.start()
        hub.wait_subscribers("late")
        sent = client.publish("late", "finally")
        assert take(q, 1)[0].id == sent["id"]


def test_close_from_another_thread_ends_iteration(hub):
    with Client(hub.url) as client:
        sub = client.subscribe("idle")
        done = threading.Event()
        threading.Thread(target=lambda: (list(sub), done.set()), daemon=True).start()
        hub.wait_subscribers("idle")
        sub.close()
        assert done.wait(5), "close() did not end the blocked iteration"


def test_silent_connection_is_reconnected_after_read_timeout(start_hub):
    hub = start_hub("--memory", "--retry", "50", "--heartbeat", "60")
    with Client(hub.url, read_timeout=0.3) as client:
        sub = client.subscribe("quiet")
        q = collect(sub, 1)
        hub.wait_subscribers("quiet")
        deadline = time.monotonic() + 10
        while sub.connections < 3:  # each 0.3 s without a byte ends in a reconnect
            assert time.monotonic() < deadline
            time.sleep(0.05)
        hub.wait_subscribers("quiet")
        sent = client.publish("quiet", "still here")
        assert take(q, 1)[0].id == sent["id"]
