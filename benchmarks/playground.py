"""The playground under load (issue 15): keystroke-to-totals latency in a real browser, and many clients at once.

    python benchmarks/playground.py [--spec specs/resnet152.cnn] [--keys 40] [--clients 20] [--edits 15]

It starts `cnndsl serve --port 0` as a user would (a separate process), then:

1. latency: headless Chromium (Debian's, through Playwright) opens the spec; each keystroke adds or removes a
   digit of the last dense layer's width, which changes the parameter count. The page itself times from
   the keydown event to the moment the totals show the new count (a MutationObserver). Target: under 150 ms
   for ResNet-152. The peer in the same run: the server's check alone (POST /api/check, timed by the client)
   and the checker alone in this process (cnndsl.parse), so the ratio says what the page and HTTP add.
2. clients: N threads, each a client editing its own copy of the spec (a different width each edit), post
   every edit to /api/check and every third to /api/diagram; each answer's parameter count is compared
   with the one cnndsl.parse gives for that text. Prints the errors (must be 0) and the latencies.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "cnndsl", "serve", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stdout.read()}")
    return proc, match.group(1)


def post(url: str, path: str, body: dict) -> tuple[int, dict, float]:
    data = json.dumps(body).encode()
    base, token = url.split("?token=")
    request = urllib.request.Request(base + path.lstrip("/"), data=data,
                                     headers={"Content-Type": "application/json", "X-Cnndsl-Token": token})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
            status = response.status
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, {}
    return status, payload, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1e3:6.1f} ms, p90 {pct(values, 0.9) * 1e3:6.1f} ms, "
            f"max {max(values) * 1e3:6.1f} ms")


def latency(url: str, spec: Path, keys: int) -> None:
    from playwright.sync_api import sync_playwright

    import cnndsl

    chromium = os.environ.get("CNNDSL_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        print("latency: skipped, no chromium (apt install chromium)")
        return
    text = spec.read_text(encoding="utf-8")
    last = [m for m in re.finditer(r"dense (\d+)", text)][-1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's policy forbids
        page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page.goto(f"{url}#shipped/{spec.name}")  # the address carries the token
        page.wait_for_selector("body.ready", state="attached", timeout=60_000)
        page.wait_for_function("document.getElementById('total-params') !== null", timeout=60_000)
        page.evaluate("""() => {
            window.marks = {key: [], shown: []};
            document.addEventListener('keydown', () => window.marks.key.push(performance.now()), true);
            const box = document.getElementById('totals');
            new MutationObserver(() => {
                const v = document.getElementById('total-params');
                if (v) window.marks.shown.push([performance.now(), v.textContent]);
            }).observe(box, {childList: true, subtree: true, characterData: true});
        }""")
        line = text[:last.end()].count("\n") + 1
        page.locator(".cm-line").nth(line - 1).click()
        page.keyboard.press("End")
        # Every keystroke makes a text the server has not seen (its cache would answer a repeat at once): the
        # width's last digit is replaced by a new one (Shift+Left selects it, the digit key types over it),
        # and every ninth keystroke appends a digit instead. Only the digit key is timed.
        digits = last.group(1)
        widths = []
        for k in range(keys):
            digit = str(k % 9 + 1)
            if k % 9 == 0:
                digits += digit
            else:
                page.keyboard.press("Shift+ArrowLeft")
                digits = digits[:-1] + digit
            expect = f"{cnndsl.parse(text.replace(last.group(0), f'dense {digits}')).totals.params:,}"
            before = page.evaluate("window.marks.key.length")
            page.keyboard.press(digit)
            page.wait_for_function(f"document.getElementById('total-params').textContent === '{expect}'",
                                   timeout=30_000)
            key = page.evaluate(f"window.marks.key[{before}]")
            shown = page.evaluate(f"window.marks.shown.filter(([t, v]) => t >= {key} && v === '{expect}')[0][0]")
            widths.append((shown - key) / 1e3)
            page.wait_for_timeout(150)  # a person types a few keys a second
        browser.close()
    server = []
    checker = []
    for k in range(keys):
        edited = text.replace(last.group(0), f"dense {int(last.group(1)) + k + 1}")
        status, payload, took = post(url, "/api/check", {"text": edited, "name": spec.name})
        assert status == 200 and payload["ok"]
        server.append(took)
        start = time.perf_counter()
        cnndsl.parse(edited + f"\n# {k}", spec.name)
        checker.append(time.perf_counter() - start)
    page_ms, server_ms = statistics.median(widths), statistics.median(server)
    print(f"latency, {spec.name}, {keys} keystrokes, keydown to new totals on the page: {ms(widths)}")
    print(f"  peer: POST /api/check alone (client-timed): {ms(server)}")
    print(f"  peer: cnndsl.parse alone, in process:      {ms(checker)}")
    print(f"  page / server check: {page_ms / server_ms:.2f}x; target under 150 ms: "
          f"{'met' if pct(widths, 0.9) < 0.150 else 'NOT met'} (p90)")


def clients(url: str, spec: Path, count: int, edits: int) -> None:
    import cnndsl

    text = spec.read_text(encoding="utf-8")
    last = [m for m in re.finditer(r"dense (\d+)", text)][-1]
    errors: list[str] = []
    times: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def client(n: int) -> None:
        barrier.wait()
        for k in range(edits):
            width = 10 + n * 100 + k
            edited = text.replace(last.group(0), f"dense {width}")
            expect = cnndsl.parse(edited, spec.name).totals.params
            status, payload, took = post(url, "/api/check", {"text": edited, "name": spec.name})
            problem = None
            if status != 200:
                problem = f"client {n} edit {k}: HTTP {status}"
            elif payload["totals"]["params"] != expect:
                problem = f"client {n} edit {k}: {payload['totals']['params']} params, expected {expect}"
            if k % 3 == 0 and problem is None:
                status, payload, _ = post(url, "/api/diagram", {"text": edited, "name": spec.name})
                if status != 200 or "<svg" not in payload.get("svg", ""):
                    problem = f"client {n} edit {k}: diagram HTTP {status}"
            with lock:
                times.append(took)
                if problem:
                    errors.append(problem)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    print(f"clients: {count} at once, {edits} edits each ({count * edits} checks, {count * ((edits + 2) // 3)} "
          f"diagrams) of {spec.name} in {wall:.1f} s: {len(errors)} errors")
    print(f"  each check, as its client waited: {ms(times)}")
    for problem in errors[:10]:
        print(f"  {problem}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "specs" / "resnet152.cnn"))
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--edits", type=int, default=15)
    args = ap.parse_args()
    proc, url = start_server()
    try:
        print(f"server: {url} (cnndsl serve, {os.cpu_count()} cores)")
        if args.keys:
            latency(url, Path(args.spec), args.keys)
        if args.clients:
            clients(url, Path(args.spec), args.clients, args.edits)
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
