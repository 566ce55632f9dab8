"""The verifier page in Chromium against a running devnet: one scenario per verdict.

A person opens ``http://node/``, drops a file (or picks it with the keyboard) and reads
the verdict; the page verifies the node's bundle itself, so a doctored node or a broken
network reads "could not be verified", never "valid" or "revoked".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.page import make_static_page_router
from scripts.devkit import EXAMPLES_DIR
from scripts.devnet import DevnetLayout

pytestmark = pytest.mark.integration

DESKTOP = {"width": 1100, "height": 1000}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page(browser: Any, devnet: DevnetLayout) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    open_page(page, devnet.zones[1].url)
    yield page
    context.close()


def open_page(page: Any, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)


def wait_verdict(page: Any) -> str:
    page.wait_for_function(
        "() => { const r = document.getElementById('result'); return r.dataset.verdict && !r.hidden; }",
        timeout=30_000,
    )
    verdict: str = page.get_attribute("#result", "data-verdict")
    return verdict


def drop_file(page: Any, path: Path) -> str:
    """Hand the file to the drop zone's file input, as a picker or a drop would."""
    page.set_input_files("#file", str(path))
    return wait_verdict(page)


def shot(page: Any, screenshots: Path, name: str) -> None:
    path = screenshots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def checks(page: Any) -> dict[str, str]:
    """Each check's code and its state (pass, fail, skipped)."""
    items = page.query_selector_all("#checks li")
    return {item.get_attribute("data-code"): item.get_attribute("class") for item in items}


ALL_CODES = {"genesis", "validators", "header", "commit", "inclusion", "signature", "issuer", "integrity", "history", "status"}


def test_valid_json_shows_valid_with_facts(page: Any, screenshots: Path) -> None:
    verdict = drop_file(page, EXAMPLES_DIR / "decl_export.json")
    shot(page, screenshots, "valid-json")
    assert verdict == "valid"
    assert page.inner_text("#verdict") == "Valid"
    assert checks(page) == dict.fromkeys(ALL_CODES, "pass")
    facts = page.inner_text("#facts")
    assert "EG-TEDA/EG-TEDA-EX-2026-0007781" in facts
    assert "EG-TEDA" in facts and "listed in genesis" in facts
    assert "Signed by validators" in facts
    page.wait_for_function("() => document.querySelector('#timeline li .when').textContent.includes('in block')")
    assert "Issued" in page.inner_text("#timeline")


def test_valid_pdf_attachment_dropped_shows_valid(page: Any, screenshots: Path) -> None:
    pdf = EXAMPLES_DIR / "coo_preferential.pdf"
    # A real drop event on the drop zone, with the file in its DataTransfer.
    page.evaluate(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, { type: "application/pdf" }));
            const zone = document.getElementById("dropzone");
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
        }""",
        [pdf.name, base64.b64encode(pdf.read_bytes()).decode()],
    )
    verdict = wait_verdict(page)
    shot(page, screenshots, "valid-pdf")
    assert verdict == "valid", page.inner_text("#result")
    assert 'attachment "coo_preferential.pdf"' in page.inner_text("#checks")
    assert "EG-TEDA/CO-2026-000123" in page.inner_text("#facts")


def test_original_of_amended_certificate_shows_amended_and_current_version(page: Any, screenshots: Path) -> None:
    verdict = drop_file(page, EXAMPLES_DIR / "coo_preferential.json")
    shot(page, screenshots, "amended")
    assert verdict == "amended"
    assert "version 1" in page.inner_text("#reason")
    current = page.inner_text("#current-version")
    assert "Version 2" in current and "gross weight of item 2 corrected" in current
    timeline = page.inner_text("#timeline")
    assert "Issued" in timeline and "Amended" in timeline and "gross weight of item 2 corrected" in timeline


def test_amended_current_copy_shows_valid(page: Any, devnet: DevnetLayout) -> None:
    assert drop_file(page, devnet.root / "coo_preferential_amended.json") == "valid"


def test_revoked_certificate_shows_revoked_with_reason(page: Any, screenshots: Path) -> None:
    verdict = drop_file(page, EXAMPLES_DIR / "coo_non_preferential.json")
    shot(page, screenshots, "revoked")
    assert verdict == "revoked"
    assert page.inner_text("#verdict") == "Revoked"
    assert checks(page) == dict.fromkeys(ALL_CODES, "pass")
    timeline = page.inner_text("#timeline")
    assert "Revoked" in timeline and "crane not shipped: contract cancelled" in timeline


def test_altered_copy_shows_tampered(page: Any, screenshots: Path, tmp_path: Path) -> None:
    document = json.loads((EXAMPLES_DIR / "decl_export.json").read_text())
    document["goodsItems"][0]["netMassKg"] = "1.00"
    altered = tmp_path / "decl_export.json"
    altered.write_text(json.dumps(document, indent=2))
    verdict = drop_file(page, altered)
    shot(page, screenshots, "tampered")
    assert verdict == "tampered"
    assert "EG-TEDA/EG-TEDA-EX-2026-0007781" in page.inner_text("#reason")
    states = checks(page)
    assert states.pop("integrity") == "fail"
    assert set(states.values()) == {"pass"}


def test_unregistered_document_shows_unknown(page: Any, screenshots: Path, tmp_path: Path) -> None:
    document = json.loads((EXAMPLES_DIR / "invoice.json").read_text())
    document["id"] = "INV-NEVER-ISSUED-1"
    path = tmp_path / "invoice.json"
    path.write_text(json.dumps(document))
    verdict = drop_file(page, path)
    shot(page, screenshots, "unknown")
    assert verdict == "unknown"
    assert page.inner_text("#verdict") == "Unknown"


def test_unreachable_node_reads_could_not_be_verified(page: Any, screenshots: Path) -> None:
    page.route("**/v1/verify", lambda route: route.abort())
    verdict = drop_file(page, EXAMPLES_DIR / "decl_export.json")
    shot(page, screenshots, "network-failure")
    assert verdict == "could not be verified"
    assert "could not be reached" in page.inner_text("#reason")


def doctored_node(node_url: str, genesis_config: dict[str, Any]) -> FastAPI:
    """A node that serves the real page and answers with the real node's bundle, one
    commit signature byte flipped; everything else it relays unchanged."""
    app = FastAPI()
    app.include_router(make_static_page_router(genesis_config))
    client = httpx.AsyncClient(base_url=node_url, timeout=30)

    @app.post("/v1/verify")
    async def verify(request: Request) -> JSONResponse:
        answer = (await client.post("/v1/verify", content=await request.body(),
                                    headers={"content-type": "application/json"})).json()
        signature = answer["bundle"]["commit"]["signatures"][0]
        flipped = int(signature["sig"][:2], 16) ^ 0x01
        signature["sig"] = f"{flipped:02x}" + signature["sig"][2:]
        answer["verdict"] = "valid"  # and it lies about its opinion
        return JSONResponse(answer)

    @app.get("/v1/{path:path}")
    async def relay(path: str) -> Response:
        upstream = await client.get(f"/v1/{path}")
        return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")

    return app


def test_doctored_node_with_forged_commit_reads_could_not_be_verified(
    browser: Any, devnet: DevnetLayout, app_server: Any, screenshots: Path
) -> None:
    node_url = devnet.zones[0].url
    config = httpx.get(f"{node_url}/config.json").json()
    with app_server(doctored_node(node_url, config)) as url:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        open_page(page, url)
        verdict = drop_file(page, EXAMPLES_DIR / "decl_export.json")
        shot(page, screenshots, "doctored-node")
        context.close()
    assert verdict == "could not be verified"


def test_doctored_node_page_reason_names_the_signature(browser: Any, devnet: DevnetLayout, app_server: Any) -> None:
    node_url = devnet.zones[0].url
    config = httpx.get(f"{node_url}/config.json").json()
    with app_server(doctored_node(node_url, config)) as url:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        open_page(page, url)
        assert drop_file(page, EXAMPLES_DIR / "coo_non_preferential.json") == "could not be verified"
        reason = page.inner_text("#reason")
        states = checks(page)
        context.close()
    assert "precommit signature of validator" in reason and "does not verify" in reason
    assert states["commit"] == "fail"


def test_typed_certificate_number_shows_status(page: Any, devnet: DevnetLayout) -> None:
    probe = httpx.post(f"{devnet.zones[0].url}/v1/verify", json={"number": "CO-2026-004417"})
    assert probe.status_code == 200 and probe.json()["matched"] == "number", probe.text
    assert probe.json()["doc_id"] == "BY-GREATSTONE/CO-2026-004417"
    page.fill("#number", "CO-2026-004417")
    page.keyboard.press("Enter")
    assert wait_verdict(page) == "revoked"


def test_phone_viewport_stays_usable(browser: Any, devnet: DevnetLayout, screenshots: Path) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    open_page(page, devnet.zones[2].url)
    zone = page.locator("#dropzone").bounding_box()
    assert zone is not None and zone["width"] <= PHONE["width"]
    verdict = drop_file(page, EXAMPLES_DIR / "coo_preferential.json")
    page.wait_for_selector("#explorer-body:not([hidden])", timeout=15_000)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    shot(page, screenshots, "phone-amended")
    context.close()
    assert verdict == "amended"
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"


def test_keyboard_alone_reaches_and_operates_the_drop_zone(page: Any, screenshots: Path) -> None:
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "file"
    outline = page.evaluate("() => getComputedStyle(document.getElementById('dropzone')).outlineStyle")
    assert outline == "solid", "the focused drop zone shows no focus ring"
    shot(page, screenshots, "keyboard-focus")
    # Enter and Space both activate a focused file input; under load Chromium sometimes
    # ignores the first key press, so a keyboard user (and this test) tries the other.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        with page.expect_file_chooser(timeout=10_000) as chooser:
            page.keyboard.press("Enter")
    except PlaywrightTimeout:
        with page.expect_file_chooser(timeout=20_000) as chooser:
            page.keyboard.press("Space")
    chooser.value.set_files(str(EXAMPLES_DIR / "invoice.json"))
    assert wait_verdict(page) == "valid"
    assert page.get_attribute("#result", "aria-live") == "polite"


def test_explorer_shows_chain_validators_chart_and_headers(page: Any, devnet: DevnetLayout, screenshots: Path) -> None:
    page.wait_for_selector("#explorer-body:not([hidden])", timeout=15_000)
    status = httpx.get(f"{devnet.zones[1].url}/v1/status").json()
    stats = page.inner_text("#chain-stats")
    assert status["chain_id"] in stats
    assert page.locator("#validators tbody tr").count() == 4
    assert "EG-TEDA" in page.inner_text("#validators")
    assert page.locator("#chart svg rect").count() >= 1
    assert page.locator("#headers tbody tr").count() >= 1
    assert "EG-TEDA" in page.inner_text("#zones")
    assert "founding member" in page.inner_text("#zones")  # genesis zones: member since height 0
    page.wait_for_function("document.querySelectorAll('#proposals li').length > 0", timeout=15_000)
    assert "No open proposal" in page.inner_text("#proposals")
    page.locator("#explorer").screenshot(path=str(screenshots / "explorer.png"))
