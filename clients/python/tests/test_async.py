"""The asyncio client against a real hub (plain asyncio.run, no plugin)."""

import asyncio
import time

import pytest

from ssehub import AsyncClient, SSEHubError, mint_token


async def wait_subscribers(client, topic, n=1):
    deadline = time.monotonic() + 10
    while (await client.topic(topic))["subscribers"] < n:
        assert time.monotonic() < deadline, f"no subscriber on {topic}"
        await asyncio.sleep(0.02)


async def take(subscription, n):
    out = []
    async for event in subscription:
        out.append(event)
        if len(out) >= n:
            break
    return out


def test_async_publish_and_receive_multi_topic(hub):
    async def main():
        async with AsyncClient(hub.url) as client:
            reader = asyncio.create_task(take(client.subscribe(["a", "b"]), 3))
            await wait_subscribers(client, "a")
            one = await client.publish("a", {"k": 1}, event="e")
            assert one["delivered"] == 1
            await client.publish("b", "two")
            answers = await client.publish_many(
                [{"topic": "a", "data": "x"}, ("b", "y")], concurrency=2
            )
            events = await asyncio.wait_for(reader, 10)
            assert events[0].json() == {"k": 1} and events[0].event == "e"
            assert events[0].id == one["id"]
            assert events[1].data == "two"
            assert events[2].data in ("x", "y")
            assert len(answers) == 2

    asyncio.run(main())


def test_async_reset_and_resume(hub):
    async def main():
        async with AsyncClient(hub.url) as client:
            ids = [a["id"] for a in await client.publish_many([("r", str(i)) for i in range(4)])]
            resumed = await asyncio.wait_for(take(client.subscribe("r", ids[1]), 2), 10)
            assert [e.data for e in resumed] == ["2", "3"]
            reset = await asyncio.wait_for(take(client.subscribe("r", "nope"), 5), 10)
            assert reset[0].is_reset and reset[0].json()["lastEventId"] == "nope"
            assert [e.data for e in reset[1:]] == ["0", "1", "2", "3"]

    asyncio.run(main())


def test_async_kill_and_restart(start_hub, tmp_path):
    hub = start_hub("--data-dir", str(tmp_path / "data"), "--retry", "300")

    async def main():
        async with AsyncClient(hub.url) as client:
            sub = client.subscribe("q", max_delay=1.0)
            reader = asyncio.create_task(take(sub, 8))
            await wait_subscribers(client, "q")
            sent = [(await client.publish("q", f"m{i}"))["id"] for i in range(4)]
            await asyncio.sleep(0.3)
            await asyncio.to_thread(hub.restart)
            sent += [(await client.publish("q", f"m{i}"))["id"] for i in range(4, 8)]
            events = await asyncio.wait_for(reader, 15)
            assert [e.id for e in events] == sent
            assert [e.data for e in events] == [f"m{i}" for i in range(8)]
            assert sub.connections >= 2

    asyncio.run(main())


def test_async_jwt(start_hub):
    hub = start_hub("--memory", "--publisher-jwt-key", "secret")

    async def main():
        async with AsyncClient(hub.url) as client:
            with pytest.raises(SSEHubError) as e:
                await client.publish("news", "x")
            assert e.value.status == 401
        async with AsyncClient(hub.url, token=mint_token("secret", publish=["*"])) as client:
            assert (await client.publish("news", "x"))["id"]

    asyncio.run(main())


def test_async_cancel_a_waiting_subscription(hub):
    async def main():
        async with AsyncClient(hub.url) as client:
            reader = asyncio.create_task(take(client.subscribe("idle"), 1))
            await wait_subscribers(client, "idle")
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            deadline = time.monotonic() + 10
            while (await client.topic("idle"))["subscribers"]:
                assert time.monotonic() < deadline, "the stream was not closed"
                await asyncio.sleep(0.02)

    asyncio.run(main())
