"""The browser client end to end: Debian's headless Chromium opens the page the service serves at ``/``, publishes
its (fake, file-backed) camera over WHIP, and renders the verdicts that come back on the data channel.

Chromium plays a .y4m made from the real-face sample video as its camera (DESIGN.md, "Browser"); Playwright's Python
package drives it with ``executable_path=/usr/bin/chromium`` and never downloads a browser of its own. Everything stays
on loopback: Chromium is told to gather 127.0.0.1 (``--allow-loopback-in-peer-connection``) with no mDNS names, the
service gathers 127.0.0.1 through the ``loopback_ice`` fixture (it runs in this process, in a thread of its own), and
``loopback_only`` keeps it from reaching Chromium's other host addresses (see there).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aioice.ice
import av
import pytest

from streamguard import assets
from tests.service_support import running_service
from tests.support import free_port

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-s3cret"
ARTIFACTS = Path(__file__).with_name("artifacts")

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
    pytest.mark.skipif(bool(assets.missing()), reason="assets missing: run `streamguard assets fetch`"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright pip package (its driver only, no browsers)")

# The env notes' flags for Chromium as root (Playwright adds --headless and a fresh --user-data-dir itself), and
# WebRTC on loopback only: Chromium leaves loopback out of its ICE candidates unless told otherwise, and mDNS names
# in place of addresses (WebRtcHideLocalIpsWithMdns, disabled in `launch`) would need multicast to resolve.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
]
DISABLED_FEATURES = ["WebRtcHideLocalIpsWithMdns"]


class ServiceThread:
    """The real service (``running_service``) on its own event loop in a background thread, so the synchronous
    Playwright API can drive the browser from the test thread."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="streamguard-service", daemon=True)

    def __enter__(self) -> ServiceThread:
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError(f"the service did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self._error is not None:
            raise RuntimeError("the service failed") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        async with running_service(self.config) as (url, _service):
            self.url, self._loop, self._stop = url, asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def request(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(f"{self.url}{path}", method=method, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = json.loads(self.request("GET", "/api/stats"))
        return stats


def wait_for(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # an mDNS name
        return False


@pytest.fixture
def loopback_only(loopback_ice: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium offers a candidate for every interface (eth0 too) and also sends its checks from them, which would make
    the service check, answer and even nominate a path to this machine's non-loopback address. Drop those remote
    candidates and leave checks from them unanswered, so every packet of the test goes to 127.0.0.1."""
    add_remote_candidate = aioice.ice.Connection.add_remote_candidate
    request_received = aioice.ice.Connection.request_received

    async def add_loopback_candidate(self: aioice.ice.Connection, candidate: aioice.Candidate | None) -> None:
        if candidate is None or _is_loopback(candidate.host):
            await add_remote_candidate(self, candidate)

    def loopback_request_received(self: aioice.ice.Connection, message: Any, addr: tuple[str, int], protocol: Any) -> None:
        if _is_loopback(addr[0]):
            request_received(self, message, addr, protocol)

    monkeypatch.setattr(aioice.ice.Connection, "add_remote_candidate", add_loopback_candidate)
    monkeypatch.setattr(aioice.ice.Connection, "request_received", loopback_request_received)


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s of the real-face sample video (640x360, 24 fps) as a .y4m file, which Chromium loops as its camera."""
    path = tmp_path_factory.mktemp("camera") / "face.y4m"
    with av.open(str(assets.sample_video())) as inp, av.open(str(path), "w", format="yuv4mpegpipe") as out:
        source = inp.streams.video[0]
        stream = out.add_stream("rawvideo", rate=24)
        stream.width, stream.height, stream.pix_fmt = source.codec_context.width, source.codec_context.height, "yuv420p"
        for index, frame in enumerate(inp.decode(source)):
            if index == 5 * 24:
                break
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceThread]:
    # With a token: the page and its static files must load without one, and WHIP must get the one typed in.
    with ServiceThread({"scheduler": {"max_delay_ms": 5}, "server": {"auth_token": TOKEN}}) as svc:
        yield svc


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def launch(playwright: Any) -> Callable[..., Any]:
    """``launch(*extra_args)`` starts a headless Chromium with CHROMIUM_ARGS and DISABLED_FEATURES.

    Chromium keeps only the last ``--disable-features`` switch, and Playwright passes its own list (features that
    phone home, among others): read the command line a plain launch gets, and pass one merged switch instead."""
    probe = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        page = probe.new_page()
        page.goto("chrome://version")
        command_line = page.inner_text("#command_line").split()
    finally:
        probe.close()
    defaults = [arg for arg in command_line if arg.startswith("--disable-features=")]
    features = [name for arg in defaults for name in arg.partition("=")[2].split(",") if name] + DISABLED_FEATURES
    merged = f"--disable-features={','.join(features)}"

    def launch(*args: str) -> Any:
        return playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, ignore_default_args=defaults, args=[*CHROMIUM_ARGS, merged, *args]
        )

    return launch


def camera_from(y4m: Path) -> list[str]:
    return ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={y4m}"]


def webrtc_session_with_frames(service: ServiceThread) -> dict[str, Any] | None:
    stats = service.stats()
    sessions = stats["webrtc_sessions"]
    return stats if sessions and sessions[0]["frames_received"] > 0 else None


def test_page_publishes_the_camera_and_draws_verdicts(
    service: ServiceThread, fake_camera: Path, launch: Callable[..., Any], loopback_only: None
) -> None:
    expect = sync_api.expect
    browser = launch("--use-fake-ui-for-media-stream", *camera_from(fake_camera))
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.goto(f"{service.url}/")
        page.fill("#token", TOKEN)
        page.click("#start")
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=20_000)

        # The service decodes frames: a webrtc stream and its session show up in /api/stats.
        stats = wait_for(lambda: webrtc_session_with_frames(service), 10, "frames on the service")
        assert stats["streams"]["browser"]["source"] == "webrtc"
        assert stats["webrtc_sessions"][0]["stream_id"] == "browser" and stats["webrtc_sessions"][0]["data_channel"]

        # Verdicts come back on the data channel and are rendered: a face row, a log entry, a box on the overlay.
        row = page.locator("#tracks tbody tr[data-track]").first
        expect(row).to_be_visible(timeout=30_000)
        assert row.get_attribute("data-level") in ("clear", "suspicious", "alert")
        cells = row.locator("td").all_inner_texts()
        assert cells[0].startswith("track ") and 0.0 <= float(cells[2]) <= 1.0, cells
        expect(page.locator("#log li").filter(has_text="appeared").first).to_be_visible()  # newest entries come first
        page.wait_for_timeout(1500)  # a few more verdicts, so the screenshot shows a settled box
        size = page.evaluate("[document.getElementById('video').videoWidth, document.getElementById('video').videoHeight]")
        assert size == [640, 360], size
        box = json.loads(row.get_attribute("data-box") or "null")
        assert box and 0 <= box[0] < box[2] <= 640 and 0 <= box[1] < box[3] <= 360, box  # same pixels as the video
        drawn = page.evaluate(
            """() => { const c = document.getElementById('overlay');
                       const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       let n = 0; for (let i = 3; i < px.length; i += 4) n += px[i] > 0; return n; }"""
        )
        assert drawn > 100, "the overlay drew no box"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser.png"))

        # Stop frees the session on the service.
        page.click("#stop")
        expect(page.locator("#status")).to_have_attribute("data-state", "stopped")
        wait_for(lambda: (s := service.stats())["streams"] == {} and s["webrtc_sessions"] == [], 5, "the session to be freed")

        # Start again; this time the service ends the session (a DELETE from elsewhere) and the page says so.
        page.click("#start")
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=20_000)
        session_id = wait_for(lambda: service.stats()["webrtc_sessions"], 10, "the second session")[0]["session_id"]
        service.request("DELETE", f"/whip/{session_id}")
        expect(page.locator("#status")).to_have_text("ended by the service", timeout=10_000)
        expect(page.locator("#message")).to_contain_text("The service ended the session")
        assert not [line for line in console if line.startswith("error") or "streamguard:" in line], console
    finally:
        browser.close()


def test_page_explains_unreachable_service_missing_token_and_denied_camera(
    service: ServiceThread, fake_camera: Path, launch: Callable[..., Any]
) -> None:
    expect = sync_api.expect
    browser = launch("--use-fake-ui-for-media-stream", *camera_from(fake_camera))
    try:
        page = browser.new_page()
        page.goto(f"{service.url}/?whip=http://127.0.0.1:{free_port()}/whip")  # nothing listens there
        page.click("#start")
        expect(page.locator("#message")).to_contain_text("Cannot reach the StreamGuard service", timeout=15_000)
        expect(page.locator("#status")).to_have_attribute("data-state", "error")

        page.goto(f"{service.url}/")  # no token typed in: the service answers 401 with a JSON error
        page.click("#start")
        expect(page.locator("#message")).to_contain_text("needs an access token", timeout=15_000)
        expect(page.locator("#message")).to_contain_text("401 unauthorized")
        assert service.stats()["webrtc_sessions"] == []
    finally:
        browser.close()

    # No fake UI: the permission prompt Chromium would show is denied, as when a person clicks "Block".
    browser = launch("--deny-permission-prompts", *camera_from(fake_camera))
    try:
        page = browser.new_page()
        page.goto(f"{service.url}/")
        page.click("#start")
        expect(page.locator("#message")).to_contain_text("Camera access was denied", timeout=15_000)
        expect(page.locator("#status")).to_have_attribute("data-state", "error")
    finally:
        browser.close()


def test_page_publishes_a_video_file_and_explains_a_missing_camera(
    service: ServiceThread, launch: Callable[..., Any], loopback_only: None
) -> None:
    expect = sync_api.expect
    browser = launch("--use-fake-ui-for-media-stream")  # permission granted, but no fake camera
    try:
        page = browser.new_page()
        page.goto(f"{service.url}/?stream_id=file")
        page.fill("#token", TOKEN)
        if not list(Path("/dev").glob("video*")):  # a machine with a real camera would open it
            page.click("#start")
            expect(page.locator("#message")).to_contain_text("No camera was found", timeout=15_000)

        # A local file plays in the page's <video> and is published through captureStream().
        page.check("input[name=source][value=file]")
        page.set_input_files("#file", str(assets.sample_video()))
        page.click("#start")
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=20_000)
        expect(page.locator("#message")).to_be_hidden()
        expect(page.locator("#tracks tbody tr[data-track]").first).to_be_visible(timeout=30_000)
        assert service.stats()["webrtc_sessions"][0]["stream_id"] == "file"
        page.click("#stop")
        wait_for(lambda: service.stats()["webrtc_sessions"] == [], 5, "the session to be freed")
    finally:
        browser.close()
