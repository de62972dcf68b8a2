"""Witness arbitration end to end on loopback (127.0.0.1): the servers' client
(clp.np.witness) against a real WitnessServer, through a witness restart, a wrong key and a
witness that is not there."""

from __future__ import annotations

import asyncio
import json
import time

from clp.keys import arbiter_key
from clp.np.witness import WitnessArbiter
from clp.witness.arbitration import Arbitration
from clp.witness.witness_server import WitnessServer

CLUSTER_KEY = bytes(range(32))
KEY = arbiter_key(CLUSTER_KEY)
HOLD = 0.3
LEASE = 0.25


async def witness(port: int = 0) -> WitnessServer:
    server = WitnessServer(arbitration=Arbitration({"cluster": KEY}, HOLD, time.monotonic))
    await server.start("127.0.0.1", port)
    return server


def client(port: int, me: str, key: bytes = KEY, incarnation: int = 1) -> WitnessArbiter:
    return WitnessArbiter(f"127.0.0.1:{port}", "cluster", key, me, 2.0, incarnation)


def test_one_side_wins_and_a_restarted_witness_holds_then_serves() -> None:
    async def main() -> None:
        server = await witness()
        port = server.port
        s1, s2 = client(port, "server1"), client(port, "server2")
        try:
            held = await s1.renew(("server2",), LEASE)
            assert not held.granted and "grants nothing for 0.3 s" in held.reason
            await asyncio.sleep(HOLD)
            assert (await s1.renew(("server2",), LEASE)).granted
            won = await s2.claim(("server1",), LEASE)
            assert won.granted and won.reason == "server2 won the witness against server1"
            lost = await s1.claim(("server2",), LEASE)
            assert (lost.granted, lost.reason) == (False, "server2 won the witness against "
                                                          "server1")
            epoch = s1.epoch
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /v1/clusters HTTP/1.1\r\nConnection: close\r\n\r\n")
            doc = json.loads((await reader.read()).split(b"\r\n\r\n", 1)[1])
            assert doc["arbitration"]["clusters"]["cluster"]["claims"] == {
                "server1": ["server2"]}
            await server.close()
            server = await witness(port)  # a restart: the claim is forgotten, so it holds
            again = await s1.renew(("server2",), LEASE)
            assert not again.granted and "grants nothing" in again.reason
            assert s1.epoch != epoch  # asked again with the new epoch at once
            await asyncio.sleep(HOLD)
            assert (await s1.renew(("server2",), LEASE)).granted
        finally:
            s1.close()
            s2.close()
            await server.close()

    asyncio.run(main())


def test_a_wrong_key_or_no_witness_is_not_granted_with_the_reason() -> None:
    async def main() -> None:
        server = await witness()
        port = server.port
        try:
            await asyncio.sleep(HOLD)
            wrong = client(port, "server1", arbiter_key(bytes(32)))
            answer = await wrong.renew((), LEASE)
            assert not answer.granted and "answered 400" in answer.reason and \
                "MAC does not match" in answer.reason
            wrong.close()
        finally:
            await server.close()
        gone = client(port, "server1")
        answer = await gone.claim(("server2",), LEASE)
        assert not answer.granted and answer.reason.startswith("the witness could not be asked")

    asyncio.run(main())
