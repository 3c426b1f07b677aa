"""Headless Chromium for tests that look at a page as a user would (the MLflow UI).

Chromium is started with ``--remote-debugging-port=0`` and driven over the DevTools protocol (a
websocket; aiohttp, already pinned for Ray, is the client): open a URL, wait until the page's text
holds something, run JavaScript in it (clicks), read its text and take a PNG screenshot. Debian's
``chromium`` package is enough; tests skip when :func:`chromium` finds none.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path


def chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, binary: str, width: int = 1500, height: int = 900, timeout: float = 60.0) -> None:
        self.binary, self.size, self.timeout = binary, (width, height), timeout
        self.loop = asyncio.new_event_loop()
        self.proc: subprocess.Popen | None = None
        self._id = 0

    def __enter__(self) -> Browser:
        self.proc = subprocess.Popen(
            [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--window-size={self.size[0]},{self.size[1]}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + self.timeout
        ws_url = None
        while ws_url is None:
            line = self.proc.stderr.readline()
            if not line and (self.proc.poll() is not None or time.monotonic() > deadline):
                raise RuntimeError(f"{self.binary} did not start its DevTools endpoint")
            if m := re.search(r"DevTools listening on (ws://\S+)", line):
                ws_url = m.group(1)
        port = ws_url.split(":")[2].split("/")[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as r:
            page = next(t for t in json.loads(r.read()) if t["type"] == "page")
        self.loop.run_until_complete(self._connect(page["webSocketDebuggerUrl"]))
        self.call("Page.enable")
        return self

    async def _connect(self, url: str) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(url, max_msg_size=0)

    async def _call(self, method: str, params: dict) -> dict:
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        async for msg in self.ws:
            reply = json.loads(msg.data)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise RuntimeError(f"{method}: the browser closed the connection")

    def call(self, method: str, **params) -> dict:
        return self.loop.run_until_complete(asyncio.wait_for(self._call(method, params), self.timeout))

    def js(self, expression: str):
        """The value of ``expression`` in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def open(self, url: str, wait_for: str) -> str:
        """Go to ``url`` and return the page's text once it contains ``wait_for`` (the UI renders late)."""
        self.call("Page.navigate", url=url)
        return self.wait_for(wait_for)

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            body = self.js("document.body ? document.body.innerText : ''") or ""
            if text in body:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {text!r}; it shows: {body[:500]!r}")
            time.sleep(0.3)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def __exit__(self, *exc) -> None:
        async def close():
            await self.ws.close()
            await self.session.close()

        try:
            self.loop.run_until_complete(close())
        finally:
            self.loop.close()
            if self.proc is not None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
