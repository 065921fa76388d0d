"""The explorer's data, server, CLI and widget, checked without a browser: packed numbers
equal the engine's bit for bit; what backward frames send equals the carry the bptt module
computes another way; the layout places every node; the server refuses what it must."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from planted import H as PLANTED_H
from planted import planted_lstm, python_like_text

from rnn_dissect.bptt.dissection import dissect_text
from rnn_dissect.cli import main
from rnn_dissect.errors import UserError
from rnn_dissect.nets.model import CharModel, ModelConfig
from rnn_dissect.render.explore_page import bundle, page
from rnn_dissect.reports import explore as ex
from rnn_dissect.reports.explore_neurons import from_neurons_dir, tuning
from rnn_dissect.reports.explore_session import open_source
from rnn_dissect.weights import checkpoint


def lstm2() -> CharModel:
    return CharModel.init(ModelConfig("lstm", tuple("helo wrd"), 3, 2), seed=1)


def test_packed_numbers_are_the_engines_and_frames_send_the_carry():
    model, text = lstm2(), "hello world"
    data = ex.model_data(model, text)
    d = dissect_text(model, text)  # the full dissection, independently
    D = data["dissection"]
    assert D["loss"] == d.loss and data["text"] == text
    g = d.run.graph
    ids = [n["id"] for n in D["nodes"]]
    assert ids == [n.id for n in g.reachable(d.run.loss)]  # dissection.json's nodes, in order
    for n in D["nodes"]:
        node = g[n["id"]]
        v = ex.tensor(data, n["value"]) if isinstance(n["value"], dict) else np.asarray(n["value"])
        assert np.array_equal(v, node.value)  # bitwise: packed float64, not decimal text
        if node.grad is not None:
            assert np.array_equal(ex.tensor(data, n["grad"]), node.grad)
    # every backward cell frame sends h_{t-1} exactly the dh_next the carry module reports
    # (StepCarry sums the recorded edge parts; the frame re-derives them with edge_grad)
    checked = 0
    for f in D["frames"]:
        if f["phase"] != "backward" or f["part"] != "cell":
            continue
        t, k = f["t"], f["layer"]
        sent = ex.tensor(data, f["sent"][f"t{t - 1}.l{k}.h"]).reshape(-1)
        want = d.carry[k][t - 2].dh_next if t > 1 else d.grads["h0"][k]
        np.testing.assert_allclose(sent, want, rtol=1e-12, atol=1e-15)
        sent_c = ex.tensor(data, f["sent"][f"t{t - 1}.l{k}.c"]).reshape(-1)
        want_c = d.carry[k][t - 2].dc_next if t > 1 else d.grads["c0"][k]
        np.testing.assert_allclose(sent_c, want_c, rtol=1e-12, atol=1e-15)
        checked += 1
    assert checked == 2 * 10
    # per-reader parts of dL/dh_t add up to the gradient (the chain rule's sum)
    parts = D["parts"]["t3.l1.h"]
    assert [c for c, _ in parts] == ["t3.logits", "t4.l1.hw"]
    total = sum(ex.tensor(data, p) for _, p in parts)
    np.testing.assert_allclose(total, g["t3.l1.h"].grad, rtol=1e-13, atol=1e-16)


def test_same_inputs_same_bytes_and_export_is_self_contained(tmp_path):
    a = ex.dumps(ex.model_data(lstm2(), "hello"))
    b = ex.dumps(ex.model_data(lstm2(), "hello"))
    assert a == b
    path = ex.export_html(json.loads(a), tmp_path / "page.html")
    html = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched
    assert "fetch(" in html and '"token"' not in html.split('id="rde-api">')[1][:20]
    assert html.count("</script>") == 3  # data, api, the bundle: no text closes one early
    assert not (tmp_path / "page.html.part").exists()
    with pytest.raises(UserError, match="is a directory"):
        ex.export_html(json.loads(a), tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        ex.export_html(json.loads(a), tmp_path / "no" / "page.html")


def test_text_is_data_in_the_page():
    evil = "</script><img src=x onerror=alert(1)>"
    html = page(json.dumps({"text": evil}))
    assert "<img" not in html and "\\u003c/script\\u003e\\u003cimg src=x" in html
    block = html.split('id="rde-data">')[1].split("</script>")[0]
    assert json.loads(block) == {"text": evil}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_layout_places_every_node(cell):
    model = CharModel.init(ModelConfig(cell, tuple("abc"), 2, 2), seed=0)
    d = dissect_text(model, "abcab", truncate=2)
    data = ex.explore_data(d, "abcab")
    lay = data["layout"]
    nodes = data["dissection"]["nodes"]
    for n in nodes:
        p = lay["place"].get(n["id"])
        if n["kind"] == "parameter":
            assert p is None  # drawn once, beside the graph
            continue
        assert p is not None, n["id"]
        if isinstance(p["row"], int) and p["col"] > 0:
            mode = "expanded" if p["hidden"] else "collapsed"
            assert p["slot"] in lay["cells"][mode]["slots"] or p["slot"].endswith("_detach")
            assert not p["slot"].startswith(
                "extra"
            )  # every node of these cells has a template slot
    assert lay["place"]["t2.l1.h_detach"] == {
        "col": 2,
        "row": 1,
        "slot": "h_detach",
        "hidden": False,
    }
    assert lay["place"]["t3.logits"]["row"] == "head" and lay["place"]["loss"]["row"] == "tail"
    placed = set(lay["place"])
    assert all(a in placed and b in placed for a, b in lay["contracted"])
    assert ["t2.l1.h_detach", "t3.l1.h"] in lay["contracted"]  # the state lane through the cut
    assert ["t3.l0.h", "t3.l1.h"] in lay["contracted"]  # from the layer below


def test_document_with_nodes_opens_as_a_page(tmp_path):
    d = dissect_text(lstm2(), "hello")
    (tmp_path / "dissection.json").write_text(d.to_json(nodes=True), encoding="utf-8")
    session = open_source(str(tmp_path))
    data = session.data()
    assert not session.can_recompute and data["text"] == "hello"
    assert data["dissection"]["loss"] == d.loss
    node = next(n for n in data["dissection"]["nodes"] if n["id"] == "t2.l1.c")
    assert np.array_equal(ex.tensor(data, node["value"]), d.run.graph["t2.l1.c"].value)
    with pytest.raises(UserError, match="cannot run new text"):
        session.data("other")
    (tmp_path / "dissection.json").write_text(d.to_json(), encoding="utf-8")  # no nodes
    with pytest.raises(UserError, match="has no nodes"):
        open_source(str(tmp_path))


def test_bad_text_is_one_clear_error():
    with pytest.raises(UserError, match="at most 513"):
        ex.check_text("x" * 600)
    with pytest.raises(UserError, match="at least two"):
        ex.check_text("x")
    with pytest.raises(UserError, match="not in the model's vocabulary"):
        ex.model_data(lstm2(), "hello!")


def test_bundle_is_one_module_exporting_mount():
    js = bundle()
    assert js.rstrip().endswith("export const { mount } = __main;")
    assert not re.search(r"^\s*import\b", js, re.M)
    assert len(re.findall(r"^export ", js, re.M)) == 1
    for view in ("graph", "stepper", "inspector", "flow", "weights", "memory", "carry", "neurons"):
        assert f"const __{view} = " in js


def _request(
    url: str, data: bytes | None = None, headers: dict | None = None
) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_server_token_bounds_and_keeps_serving():
    from rnn_dissect.web.server import MAX_BODY, start

    server, _ = start(open_source(None, text="hello", cell="gru", hidden=3))
    try:
        base = f"http://127.0.0.1:{server.port}"
        tok = f"?token={server.token}"
        assert _request(base + "/")[0] == 403
        assert _request(base + "/?token=wrong")[0] == 403
        assert _request(base + "/" + tok, headers={"Host": f"evil.example:{server.port}"})[0] == 403
        status, body, headers = _request(base + "/" + tok)
        assert status == 200 and "connect-src 'self'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        api = base + "/api/dissect" + tok
        status, body, _ = _request(api, b"{not json")
        assert status == 400 and "JSON" in json.loads(body)["error"]
        status, body, _ = _request(api, json.dumps({"text": "y" * 600}).encode())
        assert status == 400 and json.loads(body)["error"].startswith("the text has 600 characters")
        status, body, _ = _request(api, b"x" * (MAX_BODY + 1))
        assert status == 413
        assert _request(base + "/nothing" + tok)[0] == 404
        status, body, _ = _request(api, json.dumps({"text": "hello there"}).encode())
        assert status == 200  # still serving after the bad requests
        doc = json.loads(body)
        want = dissect_text(ex.fresh_model("gru", "hello there", 3, 1), "hello there").loss
        assert doc["dissection"]["loss"] == want
    finally:
        server.shutdown()
        server.server_close()


def test_cli_prints_the_url_and_serves(tmp_path):
    with subprocess.Popen(
        [sys.executable, "-m", "rnn_dissect", "explore", "--no-browser", "--text", "hello"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().rstrip("\n")
            m = re.fullmatch(
                r"rnn-dissect explorer: http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", line
            )
            assert m, line
            status, body, _ = _request(f"http://127.0.0.1:{m[1]}/explore.json?token={m[2]}")
            assert status == 200 and json.loads(body)["text"] == "hello"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_cli_export_and_bad_flags(tmp_path, capsys):
    out = tmp_path / "gru.html"
    assert main(["explore", "--cell", "gru", "--text", "hello", "--export", str(out)]) == 0
    assert out.is_file() and "rnn-dissect/explore" in out.read_text(encoding="utf-8")
    capsys.readouterr()
    ckpt = tmp_path / "m.safetensors"
    checkpoint.save(lstm2(), ckpt)
    for argv, msg in (
        (["--hidden", "0"], "--hidden must be"),
        (["--port", "70000"], "--port 70000"),
        ([str(tmp_path / "nope")], "does not exist"),
        ([str(ckpt), "--cell", "gru"], "drop --cell"),
        ([str(ckpt), "--text", "hi!"], "vocabulary"),
        (["--text", "z" * 600], "at most 513"),
        (["--cell", "transformer"], "unknown cell"),
    ):
        assert main(["explore", "--export", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and msg in err and "\n" not in err, err


def planted_model() -> tuple[CharModel, str]:
    text = python_like_text(np.random.default_rng(3), n_lines=6)
    vocab = tuple(sorted(set(text)))
    lstm = planted_lstm(vocab)
    params = {f"rnn.{k}": v.detach().numpy().copy() for k, v in lstm.state_dict().items()}
    rng = np.random.default_rng(0)
    params["head.weight"] = rng.normal(0, 0.1, (len(vocab), PLANTED_H))
    params["head.bias"] = np.zeros(len(vocab))
    return CharModel(ModelConfig("lstm", vocab, PLANTED_H), params), text


def test_neurons_view_ranks_the_planted_bracket_counter(tmp_path):
    model, text = planted_model()
    text = text[:200]
    data = ex.model_data(model, text, neurons={})
    view = data["neurons"]
    assert view["text"] == text[:-1]  # the inputs: row t is the state after reading char t
    best = view["ranking"]["bracket_depth"][0]
    assert (best["layer"], best["kind"], best["unit"]) == (0, "c", 0)  # c₀ = 0.1 · depth
    assert best["score"] == pytest.approx(1.0, abs=1e-6)
    # a neurons output directory's rankings, read back
    (tmp_path / "neurons.json").write_text(json.dumps({
        "n_chars": 12345, "feature_info": {"in_quote": {"boolean": True}},
        "features": {"in_quote": [{"layer": 0, "unit": 1, "kind": "c", "score": 0.9}]},
    }))  # fmt: skip
    f = from_neurons_dir(tmp_path)
    assert f["label"] == "neurons.json (12,345 characters)" and f["boolean"]["in_quote"]
    with pytest.raises(UserError, match=r"no neurons\.json"):
        from_neurons_dir(tmp_path / "missing")
    assert tuning(tmp_path) is None  # no snapshots/


def test_widget_recomputes_and_reports_bad_text():
    pytest.importorskip("anywidget")
    import rnn_dissect

    w = rnn_dissect.explore(lstm2(), "hello")
    assert json.loads(w.data)["text"] == "hello"
    sent: list = []
    w.send = sent.append  # what would go to the browser
    w._on_msg(w, {"type": "dissect", "text": "hold"}, [])
    doc = json.loads(w.data)
    assert doc["text"] == "hold" and sent == [{"type": "done"}]
    assert doc["dissection"]["loss"] == dissect_text(lstm2(), "hold").loss
    w._on_msg(w, {"type": "dissect", "text": "h"}, [])
    assert sent[-1]["type"] == "error" and "two characters" in sent[-1]["error"]
    assert json.loads(w.data)["text"] == "hold"  # unchanged
    assert "export default" in w._esm and "mount(el" in w._esm


def test_tensor_round_trip_is_exact():
    data = ex.explore_data(dissect_text(lstm2(), "he"), "he")
    v = torch.tensor(ex.tensor(data, data["dissection"]["grads"]["rnn.weight_hh_l1"]))
    assert v.dtype == torch.float64 and v.shape == (12, 3)


def test_big_pages_leave_cell_internals_to_the_server(monkeypatch):
    from rnn_dissect.web.server import start

    monkeypatch.setattr(ex, "NODE_FLOATS", 10)  # as if the text were long
    session = open_source(None, text="hello", cell="lstm", hidden=3)
    data = session.data()
    nodes = {n["id"]: n for n in data["dissection"]["nodes"]}
    assert nodes["t2.l0.f"]["value"] is None and nodes["t2.l0.f"]["omitted"]
    assert nodes["t2.l0.h"]["value"] is not None  # h, c, the head and the weights stay
    assert data["dissection"]["carry"][0][0]["dh_next"] is None  # its norm stays
    assert data["dissection"]["carry"][0][0]["norms"]["dh_next"] >= 0
    assert any("the server sends" in n for n in data["notes"])
    server, _ = start(session)
    try:
        api = f"http://127.0.0.1:{server.port}/api/node?token={server.token}"
        status, body, _ = _request(api, json.dumps({"text": "hello", "id": "t2.l0.f"}).encode())
        want = dissect_text(ex.fresh_model("lstm", "hello", 3, 1), "hello").run.graph["t2.l0.f"]
        got = json.loads(body)
        assert status == 200 and np.array_equal(np.array(got["value"]), want.value)
        assert np.array_equal(np.array(got["grad"]), want.grad)
        status, body, _ = _request(api, json.dumps({"text": "hello", "id": "nope"}).encode())
        assert status == 400 and "no node" in json.loads(body)["error"]
    finally:
        server.shutdown()
        server.server_close()
