"""A devnet whose API and peer connections all run over HTTPS with a throwaway CA."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from netutil import certificates, wait_until

from scripts.devnet import Devnet, create_devnet, free_port_block

pytestmark = pytest.mark.integration


def test_four_validators_agree_over_tls(tmp_path: Path) -> None:
    layout = create_devnet(tmp_path / "tls-devnet", 4, free_port_block(4), heartbeat_ms=5000, tls=True)
    assert layout.ca is not None and all(z.url.startswith("https://") for z in layout.zones)
    devnet = Devnet(layout)
    devnet.start()
    try:
        devnet.wait_healthy()
        items = certificates(layout.alliance(), 3, "TLS")
        with httpx.Client(timeout=30, verify=layout.http_verify()) as client:
            results = [
                client.post(f"{layout.zones[i].url}/v1/transactions", params={"wait": 20},
                            json={"envelope": env.encode().hex(), "document": doc}).json()
                for i, (env, doc) in enumerate(items)
            ]
            assert [r["status"] for r in results] == ["committed"] * 3
            # Final at the node that answered; the others commit the same block moments later.
            wait_until(
                lambda: {client.get(f"{z.url}/v1/status").json()["log_size"] for z in layout.zones} == {3},
                30, "every validator to commit the three documents",
            )
        # A client that does not trust the alliance CA refuses the node's certificate.
        with httpx.Client(timeout=5) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get(f"{layout.zones[0].url}/healthz")
        # Plain HTTP is not served.
        plain = layout.zones[0].url.replace("https://", "http://")
        with httpx.Client(timeout=5) as client, pytest.raises(httpx.HTTPError):
            client.get(f"{plain}/healthz")
    finally:
        devnet.stop()
