from crdtsync.relay import Relay

from .clients import NClient, YClient


async def test_yjs_and_native_converge(relay: Relay) -> None:
    a = await YClient.open(f"{relay.url}/room1")
    b = await YClient.open(f"{relay.url}/room1")
    c = await NClient.open(f"{relay.url}/v1", doc_id="room1")
    a.m["x"] = "from a"
    await b.wait_for(lambda: b.m.get("x") == "from a")
    await c.wait_for(lambda: c.m.get("x") == "from a")
    c.t.insert(0, "héllo")
    await a.wait_for(lambda: str(a.t) == "héllo")
    await b.wait_for(lambda: str(b.t) == "héllo")
    await c.wait_for(lambda: c.acked.get("room1", 0) >= 1)
    for cl in (a, b, c):
        await cl.close()
