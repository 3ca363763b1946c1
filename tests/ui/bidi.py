"""A small WebDriver BiDi client for Debian's Firefox ESR (Playwright cannot drive a stock Firefox).

Firefox speaks the W3C WebDriver BiDi protocol itself when started with
``--remote-debugging-port``: commands and events are JSON over one WebSocket
(``ws://127.0.0.1:<port>/session``). This is just enough of it for the UI tests: a session, one
tab, navigation, script evaluation, trusted key presses, screenshots and console entries.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tests.helpers import free_port

FIREFOX = "/usr/bin/firefox-esr"

# A quiet, offline profile: no first-run pages, updates, telemetry or background fetches, so the
# browser talks to nothing but the test server.
PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "startup.homepage_welcome_url": "",
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.topsites.contile.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "remote.active-protocols": 1,  # WebDriver BiDi only
}


class BiDiError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class BiDi:
    """One WebDriver BiDi connection: ``call`` waits for its answer; events are kept in ``events``."""

    def __init__(self, ws: ClientConnection, timeout_s: float = 30.0) -> None:
        self.ws = ws
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        cid = next(self._ids)
        self.ws.send(json.dumps({"id": cid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BiDiError(f"{method}: no answer in {timeout_s or self.timeout_s} s")
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError as exc:
                raise BiDiError(f"{method}: no answer in {timeout_s or self.timeout_s} s") from exc
            msg = json.loads(raw)
            if msg.get("type") == "event":
                self.events.append(msg)
            elif msg.get("id") == cid:
                if msg.get("type") == "error":
                    raise BiDiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
                return msg["result"]

    def drain(self) -> None:
        """Take the events that arrived since the last command."""
        while True:
            try:
                raw = self.ws.recv(timeout=0.05)
            except TimeoutError:
                return
            msg = json.loads(raw)
            if msg.get("type") == "event":
                self.events.append(msg)


class Tab:
    """One browsing context (a tab) of a BiDi session."""

    def __init__(self, bidi: BiDi, context: str) -> None:
        self.bidi = bidi
        self.context = context

    def goto(self, url: str) -> None:
        self.bidi.call("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def js(self, expression: str) -> Any:
        """The JSON value of ``expression`` (evaluated as ``JSON.stringify(expression)``; promises awaited)."""
        result = self.bidi.call(
            "script.evaluate",
            {
                "expression": f"(async () => JSON.stringify(await ({expression})))()",
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
        )
        if result["type"] == "exception":
            details = result["exceptionDetails"]
            raise BiDiError(f"script error: {details.get('text')} in {expression!r}")
        value = result["result"].get("value")
        return None if value is None else json.loads(value)

    def wait_for(self, expression: str, timeout_s: float = 15.0, what: str = "") -> Any:
        """Poll until ``expression`` is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BiDiError(f"timed out after {timeout_s} s waiting for {what or expression}")
            time.sleep(0.1)

    def press(self, *keys: str) -> None:
        """Trusted key presses to the focused element (``"\\ue007"`` is Enter)."""
        actions: list[dict[str, str]] = []
        for key in keys:
            actions += [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        self.bidi.call(
            "input.performActions",
            {"context": self.context, "actions": [{"type": "key", "id": "keyboard", "actions": actions}]},
        )

    def screenshot(self, path: Path) -> None:
        data = self.bidi.call("browsingContext.captureScreenshot", {"context": self.context})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def console_errors(self) -> list[str]:
        """Every ``log.entryAdded`` of level error so far (console.error and uncaught exceptions)."""
        self.bidi.drain()
        out = []
        for ev in self.bidi.events:
            if ev.get("method") != "log.entryAdded":
                continue
            entry = ev["params"]
            if entry.get("level") == "error":
                where = entry.get("source", {}).get("context", "")
                out.append(f"{entry.get('type')}: {entry.get('text')} ({where})")
        return out


def _connect(url: str, proc: subprocess.Popen[bytes], timeout_s: float, stack: ExitStack) -> ClientConnection:
    """Connect once Firefox listens; the stack closes the connection."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BiDiError(f"firefox exited with {proc.returncode} before listening")
        try:
            return stack.enter_context(connect(url, open_timeout=5, max_size=64 * 1024 * 1024))
        except (OSError, WebSocketException, TimeoutError) as exc:
            last = exc
            time.sleep(0.2)
    raise BiDiError(f"firefox did not listen on {url} in {timeout_s} s: {last}")


@contextmanager
def firefox(width: int = 1440, height: int = 900, timeout_s: float = 40.0) -> Iterator[Tab]:
    """Headless Firefox ESR on a throwaway profile; one tab, console entries subscribed. Always killed."""
    profile = Path(tempfile.mkdtemp(prefix="logloupe-ff-"))
    (profile / "user.js").write_text(
        "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
    )
    port = free_port()
    proc = subprocess.Popen(
        [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with ExitStack() as stack:
            bidi = BiDi(_connect(f"ws://127.0.0.1:{port}/session", proc, timeout_s, stack))
            bidi.call("session.new", {"capabilities": {}})
            bidi.call("session.subscribe", {"events": ["log.entryAdded"]})
            tree = bidi.call("browsingContext.getTree", {"maxDepth": 0})["contexts"]
            context = tree[0]["context"] if tree else bidi.call("browsingContext.create", {"type": "tab"})["context"]
            viewport = {"width": width, "height": height}
            bidi.call("browsingContext.setViewport", {"context": context, "viewport": viewport})
            yield Tab(bidi, context)
            with suppress(BiDiError, WebSocketException):  # the browser is killed below either way
                bidi.call("session.end", timeout_s=5)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
