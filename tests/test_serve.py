"""The playground's server (cnndsl.serve) through HTTP, without a browser: what it answers, what it refuses.

The browser tests (test_playground.py) drive the page; these pin the contract and the local-tool guards:
the Host check (DNS rebinding), same-origin JSON POSTs (CSRF), body limits, file names checked against a
listing, saves only into FOLDER and never over a file changed since it was opened.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re

import numpy as np
import pytest
from helpers import ROOT, SPECS

import cnndsl
from cnndsl.errors import CnnDslError
from cnndsl.serve import work
from cnndsl.serve.app import MAX_BODY, create_app

pytest.importorskip("httpx2")
from starlette.testclient import TestClient  # noqa: E402

LENET = (SPECS / "lenet5.cnn").read_text(encoding="utf-8")
URL = "http://127.0.0.1:8000"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "mine.cnn").write_text("network mine\ninput 3x32x32\nconv 8 3x3 relu\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def client(folder):
    with TestClient(create_app(folder), base_url=URL) as c:
        yield c


def post(client, path, body, **headers):
    return client.post(path, json=body, headers=headers)


def test_check_gives_the_totals_and_layers_of_the_api():
    result = work.check(LENET, "lenet5.cnn")
    net = cnndsl.load(SPECS / "lenet5.cnn")
    assert result["ok"] and result["diagnostics"] == []
    assert result["totals"]["params"] == net.totals.params == 61_706
    assert result["totals"]["macs"] == net.totals.macs
    assert [row["name"] for row in result["layers"]] == net.layers
    assert result["layers"][0]["line"] == 10 and result["output"] == [10]
    assert "features.0" in result["map_layers"] and "classifier.2" not in result["map_layers"]


@pytest.mark.parametrize("text, message, line, col, hint", [
    ("network x\ninput 3x32x32\nconv 8 3x3 stride=0\n", "stride must be positive", 3, 12, None),
    ("network x\ninput 3x32x32\nconv 8 3x3 relu\ndens 10\n", "unknown layer 'dens'", 4, 1, "did you mean 'dense'"),
    ("network x\ninput 3x32x32\nconv 8 3x3 {\n", "unexpected '{'", 3, 12, "same line"),
    ("network x\ninput 3x8x8\nconv 8 9x9\n", "gives no output", 3, 8, "pad it"),
], ids=["bad-stride", "unknown-kind", "unclosed-brace", "kernel-too-large"])
def test_check_marks_the_mistake(text, message, line, col, hint):
    result = work.check(text, "x.cnn")
    assert not result["ok"]
    (d,) = result["diagnostics"]
    assert message in d["message"] and d["severity"] == "error"
    assert (d["line"], d["col"]) == (line, col)
    if hint:
        assert hint in d["hint"]


def test_check_over_http_matches_the_function(client):
    r = post(client, "/api/check", {"text": LENET, "name": "lenet5.cnn"})
    assert r.status_code == 200
    assert r.json() == work.check(LENET, "lenet5.cnn")
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_the_page_and_its_assets_come_from_the_server_alone(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert asset.startswith("/static/"), f"{asset}: the page must load nothing from elsewhere"
        assert client.get(asset).status_code == 200
    css = client.get("/static/style.css").text
    assert "url(" not in css and "@import" not in css and "http" not in css


def test_the_bundle_is_built_from_the_current_sources():
    """app.js carries the digest of playground/src and the lockfile: edit them, then `npm run build`."""
    source = ROOT / "playground"
    digest = hashlib.sha256()
    for path in [source / "package-lock.json"] + sorted((source / "src").iterdir()):
        digest.update(path.read_bytes())
    head = (ROOT / "cnndsl/serve/static/app.js").read_text(encoding="utf-8").splitlines()[0]
    assert f"sha256:{digest.hexdigest()}" in head, "rebuild the playground: cd playground && npm ci && npm run build"


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "192.168.1.4"])
def test_a_foreign_host_header_is_refused(folder, host):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header gives it away."""
    with TestClient(create_app(folder), base_url=f"http://{host}:8000") as c:
        assert c.get("/api/info").status_code == 400
        assert c.post("/api/check", json={"text": LENET}).status_code == 400


def test_a_request_from_another_sites_page_is_refused(client):
    r = post(client, "/api/save", {"name": "x.cnn", "text": "network x\n"}, origin="http://evil.example")
    assert r.status_code == 403
    r = client.post("/api/save", content="name=x.cnn", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert post(client, "/api/check", {"text": LENET}, origin=URL).status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(client):
    r = client.post("/api/check", content=b"{}", headers={"content-type": "application/json",
                                                          "content-length": str(MAX_BODY + 1)})
    assert r.status_code == 413
    r = client.post("/api/check", content=b"x" * (MAX_BODY + 10), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("body, status", [
    (b"not json", 422), (b"[1, 2]", 422), (b'{"text": 5}', 422), (b'{"name": "x.cnn"}', 422),
    (b"[" * 100_000 + b"]" * 100_000, 422),  # nested past Python's recursion limit
    (rb'{"text": "network x\\ud800"}', 200), (rb'{"text": "network x\ud800"}', 422),  # a lone surrogate
    (rb'{"text": "\u0000network x"}', 200),  # a NUL is the checker's to refuse, as any stray character
])
def test_malformed_requests_get_a_message_not_a_crash(client, body, status):
    r = client.post("/api/check", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    if status == 200:  # the checker's answer: a diagnostic, not a crash
        assert not r.json()["ok"] and r.json()["diagnostics"][0]["message"]
    else:
        assert r.json()["error"]["message"]


def test_the_spec_size_limit_holds(client):
    r = post(client, "/api/check", {"text": "# " + "x" * 70_000 + "\nnetwork x\ninput 3x8x8\n"})
    assert r.status_code == 200
    (d,) = r.json()["diagnostics"]
    assert "limit" in d["message"] or "larger" in d["message"]


def test_the_lists_and_reading_specs(client):
    info = client.get("/api/info").json()
    assert "resnet152.cnn" in info["shipped"] and info["specs"] == ["mine.cnn"]
    assert "conv" in info["layers"] and "network" in info["keywords"]
    r = client.get("/api/spec/shipped/resnet152.cnn").json()
    assert r["text"] == (SPECS / "resnet152.cnn").read_text(encoding="utf-8")
    assert r["sha256"] == hashlib.sha256(r["text"].encode()).hexdigest()
    assert client.get("/api/spec/folder/mine.cnn").json()["text"].startswith("network mine")


@pytest.mark.parametrize("path", [
    "/api/spec/shipped/..%2Fpyproject.toml", "/api/spec/folder/..%2F..%2Fetc%2Fpasswd", "/api/spec/elsewhere/x.cnn",
    "/api/spec/folder/missing.cnn", "/api/spec/shipped/.hidden.cnn",
])
def test_nothing_outside_the_listings_is_read(client, path):
    r = client.get(path)
    assert r.status_code in (404, 422)
    assert "root:" not in r.text and "[project]" not in r.text


def test_a_link_in_the_folder_is_not_followed(client, folder, tmp_path_factory):
    secret = tmp_path_factory.mktemp("outside") / "secret.cnn"
    secret.write_text("network secret\n", encoding="utf-8")
    (folder / "link.cnn").symlink_to(secret)
    assert "link.cnn" not in client.get("/api/info").json()["specs"]
    assert client.get("/api/spec/folder/link.cnn").status_code == 422
    r = post(client, "/api/save", {"name": "link.cnn", "text": "network x\n", "base": None})
    assert r.status_code == 422 and secret.read_text(encoding="utf-8") == "network secret\n"


def test_save_writes_only_into_the_folder_and_never_over_a_changed_file(client, folder):
    new = "network fresh\ninput 1x8x8\nconv 2 3x3\n"
    r = post(client, "/api/save", {"name": "fresh.cnn", "text": new, "base": None})
    assert r.status_code == 200 and (folder / "fresh.cnn").read_text(encoding="utf-8") == new
    # saving again from the text that was opened
    edited = new + "relu\n"
    r = post(client, "/api/save", {"name": "fresh.cnn", "text": edited, "base": r.json()["sha256"]})
    assert r.status_code == 200 and (folder / "fresh.cnn").read_text(encoding="utf-8") == edited
    # the file changed on disk since: refused, the file kept
    (folder / "fresh.cnn").write_text("network other\n", encoding="utf-8")
    r = post(client, "/api/save", {"name": "fresh.cnn", "text": new, "base": r.json()["sha256"]})
    assert r.status_code == 422 and "changed on disk" in r.json()["error"]["message"]
    assert (folder / "fresh.cnn").read_text(encoding="utf-8") == "network other\n"
    # a new file over an existing one
    r = post(client, "/api/save", {"name": "mine.cnn", "text": new, "base": None})
    assert r.status_code == 422 and "exists" in r.json()["error"]["message"]
    assert sorted(os.listdir(folder)) == ["fresh.cnn", "mine.cnn"]  # nothing staged left behind


@pytest.mark.parametrize("name", ["../escape.cnn", "/tmp/abs.cnn", "sub/x.cnn", "x.txt", ".cnn", "x.cnn\n", ""])
def test_save_refuses_names_that_are_not_plain_spec_names(client, folder, name):
    r = post(client, "/api/save", {"name": name, "text": "network x\n", "base": None})
    assert r.status_code == 422
    assert sorted(os.listdir(folder)) == ["mine.cnn"] and not (folder.parent / "escape.cnn").exists()


def test_without_a_folder_nothing_is_saved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(None), base_url=URL) as c:
        assert c.get("/api/info").json()["folder"] is None
        r = c.post("/api/save", json={"name": "x.cnn", "text": "network x\n", "base": None})
        assert r.status_code == 422 and "no folder" in r.json()["error"]["message"]
    assert os.listdir(tmp_path) == []


def test_compile_downloads_a_model_onnxruntime_runs(client):
    import onnxruntime as ort

    r = post(client, "/api/compile", {"text": LENET, "name": "lenet5.cnn"})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="lenet5.onnx"'
    session = ort.InferenceSession(r.content, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 1, 32, 32), np.float32)})
    assert y.shape == (1, 10)


def test_compile_refuses_what_cannot_fit_as_the_cli_does(client):
    text = (SPECS / "mlp_12mp.cnn").read_text(encoding="utf-8")
    r = post(client, "/api/compile", {"text": text, "name": "mlp_12mp.cnn"})
    assert r.status_code == 422
    assert "compiling mlp_12mp in memory needs about 2.0 TB" in r.json()["error"]["message"]


def _png(size=(40, 30), mode="RGB") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 90) if mode == "RGB" else 128).save(out, format="PNG")
    return out.getvalue()


def test_feature_maps_of_any_layer(client):
    body = {"text": LENET, "name": "lenet5.cnn", "layer": "features.3", "image": base64.b64encode(_png()).decode(),
            "filename": "photo.png"}
    r = post(client, "/api/maps", body)
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["channels"] == 16 and meta["shape"] == [16, 10, 10] and meta["provider"].endswith("ExecutionProvider")
    assert base64.b64decode(meta["png"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_cut_network_has_the_whole_networks_weights():
    """The maps of a layer are that layer's tensor in the whole (seeded) network, exactly."""
    import onnx
    import onnxruntime as ort

    net = cnndsl.load(SPECS / "lenet5.cnn")
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    cut, _ = net.upto("features.5").run(x)
    whole = net.to_onnx()
    whole.graph.output.append(onnx.helper.make_tensor_value_info("features.5", onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(whole.SerializeToString(), providers=["CPUExecutionProvider"])
    _, inside = session.run(None, {session.get_inputs()[0].name: x})
    assert cut.shape == (1, 16, 5, 5)
    np.testing.assert_array_equal(cut, inside)


@pytest.mark.parametrize("body, message", [
    ({"layer": "features.9"}, "no layer or block named 'features.9'"),
    ({"layer": "classifier.0"}, "not channels of a picture"),
    ({"image": base64.b64encode(b"not an image").decode()}, "image"),
    ({"image": "***"}, "not base64"),
])
def test_feature_maps_refuse_clearly(client, body, message):
    full = {"text": LENET, "name": "lenet5.cnn", "layer": "features.0", "image": base64.b64encode(_png()).decode(),
            **body}
    r = post(client, "/api/maps", full)
    assert r.status_code == 422 and message in r.json()["error"]["message"]


def test_diagram_fits_a_page_by_default():
    pytest.importorskip("shutil").which("dot") or pytest.skip("Graphviz's dot is not installed")
    text = (SPECS / "resnet152.cnn").read_text(encoding="utf-8")
    d = work.diagram(text, "resnet152.cnn")
    assert d["depth"] == 2 and d["deepest"] == 4 and d["svg"].lstrip().startswith("<?xml")
    assert work.diagram(text, "resnet152.cnn", None)["depth"] is None
    small = work.diagram(LENET, "lenet5.cnn")
    assert small["depth"] is None  # every layer fits


def test_lineage_has_the_gap_and_the_chart(client):
    r = client.get("/api/lineage").json()
    assert "mlp_12mp" in r["gap"] and "lenet5" in r["gap"]
    assert r["gap_note"] == "MLP vs CNN: mlp_12mp has 2,039,334x the parameters of lenet5"
    assert "resnet152" in r["table"] and r["svg"].lstrip().startswith("<?xml")


def test_serve_says_when_the_port_is_taken(cli):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli("serve", "--port", port)
    assert result.exit_code == 1
    assert f"port {port} is in use" in result.stderr and "Traceback" not in result.stderr


def test_maps_of_a_network_too_large_to_run_here_are_refused(client, monkeypatch):
    """As `cnndsl run` refuses it: the activations of a batch are counted before anything is compiled."""
    import cnndsl.onnx.compile as compiling

    monkeypatch.setattr(compiling, "available_memory", lambda: 1000)  # 1 KB left on this machine
    body = {"text": LENET, "name": "lenet5.cnn", "layer": "features.0", "image": base64.b64encode(_png()).decode()}
    r = post(client, "/api/maps", body)
    assert r.status_code == 422 and "needs about" in r.json()["error"]["message"]


def test_maps_on_each_maps_own_scale(client):
    body = {"text": LENET, "name": "lenet5.cnn", "layer": "features.0", "image": base64.b64encode(_png()).decode()}
    shared = post(client, "/api/maps", body).json()["png"]
    own = post(client, "/api/maps", {**body, "scale": "map"}).json()["png"]
    assert shared != own
    assert post(client, "/api/maps", {**body, "scale": "pixel"}).status_code == 422


def test_a_flood_of_compiles_leaves_the_checks_their_threads(folder, monkeypatch):
    """Compiles wait for their turn in the event loop, not in a worker thread: ten stuck compiles (two running,
    eight waiting, the most there may be) and a keystroke's check still gets its answer."""
    import threading

    release = threading.Event()
    started = []

    def stuck(text, name, seed):
        started.append(name)
        release.wait(60)
        return b"model"

    monkeypatch.setattr(work, "compile_model", stuck)
    with TestClient(create_app(folder), base_url=URL) as c:
        threads = [threading.Thread(target=post, args=(c, "/api/compile", {"text": LENET})) for _ in range(10)]
        for t in threads:
            t.start()
        for _ in range(200):  # until the two that may run have started
            if len(started) >= 2:
                break
            threading.Event().wait(0.05)
        try:
            r = post(c, "/api/check", {"text": LENET, "name": "lenet5.cnn"})
            assert r.status_code == 200 and r.json()["totals"]["params"] == 61_706
            assert len(started) == 2  # the other 8 compiles are waiting, holding no thread
        finally:
            release.set()
            for t in threads:
                t.join(60)
    assert len(started) == 10


# --- the reviewer's findings, each a test ------------------------------------------------------------


def test_the_token_guards_every_api_request(folder):
    with TestClient(create_app(folder, token="s3cret"), base_url=URL) as c:
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200  # the page itself
        assert c.get("/api/info").status_code == 403
        assert c.get("/api/info", headers={"x-cnndsl-token": "wrong"}).status_code == 403
        r = c.post("/api/save", json={"name": "x.cnn", "text": "network x\n", "base": None},
                   headers={"x-cnndsl-token": "s3cre"})
        assert r.status_code == 403 and "token" in r.json()["error"]["message"]
        assert c.get("/api/info", headers={"x-cnndsl-token": "s3cret"}).status_code == 200
    assert sorted(os.listdir(folder)) == ["mine.cnn"]


def test_serve_prints_an_address_with_a_token_and_checks_host_names(cli):
    r = cli("serve", "--allow-host", "*", "--port", "0")
    assert r.exit_code == 2 and "not a host name" in r.stderr
    r = cli("serve", "--allow-host", "a*b", "--port", "0")
    assert r.exit_code == 2


def test_text_requests_have_a_small_body_limit(client):
    big = b'{"text": "' + b"x" * (2 << 20) + b'"}'
    r = client.post("/api/check", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/api/maps", content=big, headers={"content-type": "application/json"})
    assert r.status_code != 413  # an image may be larger: refused for what it is, not for its size


@pytest.mark.parametrize("origin", ["http://[", "http://[::1", "http://a]b"])
def test_a_malformed_origin_is_refused_not_a_crash(client, origin):
    assert post(client, "/api/check", {"text": LENET}, origin=origin).status_code == 403


def test_a_cached_error_is_kept_without_its_traceback(client):
    bad = "network x\ninput 3x8x8\nconv 8 9x9\n"
    answers = [post(client, "/api/check", {"text": bad, "name": "x.cnn"}).json() for _ in range(5)]
    assert all(a == answers[0] for a in answers)
    kept = [v for v in work._NETWORKS.items.values() if isinstance(v, Exception)]
    assert kept and all(v.__traceback__ is None for v in kept)  # raised copies each time: nothing accumulates


def test_a_diagram_too_large_to_draw_is_refused_and_depths_are_clamped():
    with pytest.raises(CnnDslError, match="more than the playground draws"):
        work.diagram("network big\ninput 1x8x8\nrepeat 5000 relu\n", "big.cnn", None)
    assert work.diagram(LENET, "lenet5.cnn", 9)["depth"] is None  # past the deepest: every layer


def test_an_upload_is_no_input_once_read(client):
    from cnndsl import io

    body = {"text": LENET, "name": "lenet5.cnn", "layer": "features.0", "image": base64.b64encode(_png()).decode()}
    assert post(client, "/api/maps", body).status_code == 200
    assert not [p for p in io._INPUTS.values() if "cnndsl-serve-" in p]  # its inode may be a saved spec next


def test_a_spec_read_by_another_request_can_still_be_saved(client, folder):
    """FOLDER may be the shipped specs (cnndsl serve specs/): the lineage reads them all; a save still works."""
    from cnndsl import io

    opened = client.get("/api/spec/folder/mine.cnn").json()
    io.reading(folder / "mine.cnn")  # as api.load does for the lineage tab
    r = post(client, "/api/save", {"name": "mine.cnn", "text": opened["text"] + "relu\n", "base": opened["sha256"]})
    assert r.status_code == 200, r.text


def test_two_saves_of_a_new_file_cannot_both_win(folder):
    import threading

    results = []
    barrier = threading.Barrier(2)

    def save(text):
        barrier.wait()
        try:
            work.save(folder, "race.cnn", text, None)
            results.append(text)
        except CnnDslError:
            results.append(None)

    threads = [threading.Thread(target=save, args=(f"network r{k}\n",)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r]
    assert len(winners) == 1 and (folder / "race.cnn").read_text(encoding="utf-8") == winners[0]


def test_compile_refuses_a_download_past_protobufs_limit(client, monkeypatch):
    import cnndsl.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 45)  # as if this machine had 32 TB
    r = post(client, "/api/compile", {"text": "network big\ninput 1000\ndense 600000\n"})
    assert r.status_code == 422 and "past protobuf's 2 GB" in r.json()["error"]["message"]


def test_compile_refuses_what_does_not_fit_four_times(client, monkeypatch):
    import cnndsl.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda: 500_000)  # LeNet's weights are 247 KB
    r = post(client, "/api/compile", {"text": LENET})
    assert r.status_code == 422 and "needs about" in r.json()["error"]["message"]


def test_a_folder_that_went_away_is_a_message(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    with TestClient(create_app(gone), base_url=URL) as c:
        gone.rmdir()
        r = c.get("/api/info")
        assert r.status_code == 422 and "cannot list the folder" in r.json()["error"]["message"]
        r = c.post("/api/save", json={"name": "x.cnn", "text": "network x\n", "base": None})
        assert r.status_code == 422 and "cannot save x.cnn" in r.json()["error"]["message"]


def test_past_the_waiting_room_compiles_get_busy(folder, monkeypatch):
    import threading

    from cnndsl.serve import app as application

    release = threading.Event()
    monkeypatch.setattr(work, "compile_model", lambda text, name, seed: release.wait(60) and b"model")
    with TestClient(create_app(folder), base_url=URL) as c:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(post(c, "/api/compile", {"text": LENET})))
                   for _ in range(application.HEAVY + application.MAX_WAITING)]
        for t in threads:
            t.start()
        for _ in range(200):
            if sum(1 for t in threads if t.is_alive()) == len(threads):
                break
        threading.Event().wait(1.0)  # all of them running or waiting
        try:
            r = post(c, "/api/compile", {"text": LENET})
            assert r.status_code == 503 and "busy" in r.json()["error"]["message"]
        finally:
            release.set()
            for t in threads:
                t.join(60)
    assert sorted(a.status_code for a in answers) == [200] * len(threads)


@pytest.mark.parametrize("method, path, status", [("get", "/api/nothing", 404), ("get", "/api/check", 405),
                                                  ("post", "/api/info", 405), ("get", "/static/none.js", 404)])
def test_wrong_paths_and_methods_answer_json(client, method, path, status):
    r = getattr(client, method)(path, **({"json": {}} if method == "post" else {}))
    assert r.status_code == status and r.json()["error"]["message"]
