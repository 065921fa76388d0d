"""watch: real torch models, real backward passes; the replay against torch's own ``.grad``.

Oracles: PyTorch autograd (the model's ``.grad`` after its backward, float64 and float32;
torch's outputs for the states), the identity Σ_t per-step terms = total, and a replay of the
whole sequence for the windowed one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

from rnn_dissect import watch  # noqa: E402
from rnn_dissect.errors import UserError  # noqa: E402

NOTES = Path(__file__).resolve().parents[1] / "docs" / "notes" / "issue-16.md"


def rel(a: np.ndarray, b: torch.Tensor) -> float:
    ref = b.detach().double().numpy()
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-300))


def assert_grads(d, module, tol):
    assert d.complete
    for name, g in d.grads.items():
        if name not in ("h0", "c0"):
            assert rel(g, getattr(module, name).grad) <= tol, name
    assert d.check(module) <= tol


def assert_terms_sum(d):
    """Σ over parts and steps of every weight's per-step terms = its total."""
    for name, total in d.grads.items():
        if name in ("h0", "c0"):
            continue
        s = sum(terms.sum(axis=0) for _, terms in d.step_grads(name))
        np.testing.assert_allclose(s, total, rtol=1e-12, atol=1e-14 * np.abs(total).max())


class Sentiment(nn.Module):
    """Embedding → 2-layer bidirectional LSTM (batch_first, packed) → mean-pool and final
    states → Linear."""

    def __init__(self, vocab=11, emb=5, hidden=4, classes=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.out = nn.Linear(5 * hidden, classes)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(
            self.emb(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        out, (h_n, c_n) = self.rnn(packed)
        padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)  # (B, T, 2H)
        pooled = padded.sum(1) / lengths[:, None].to(padded.dtype)
        # the final states too (each sequence's own last step): dL/dh_n, dL/dc_n reach torch
        return self.out(torch.cat([pooled, h_n[-2], h_n[-1], c_n[-1]], dim=-1))


def sentiment_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([3, 6, 2, 6, 4])
    tokens = torch.randint(1, 11, (5, 6), generator=g) * (torch.arange(6) < lengths[:, None])
    return tokens, lengths, torch.randint(0, 3, (5,), generator=g)


def test_sentiment_classifier_packed_bidirectional_lstm():
    torch.manual_seed(0)
    model = Sentiment().double()
    tokens, lengths, y = sentiment_batch()
    with watch(model.rnn) as w:
        nn.functional.cross_entropy(model(tokens, lengths), y).backward()
    d = w.dissection()
    assert [len(g.batch) for g in d.groups] == [1, 2, 1, 1]  # lengths 3, 6 (twice), 2, 4
    assert_grads(d, model.rnn, 1e-9)
    assert_terms_sum(d)
    # the states are torch's: layer 1's output at each sequence's valid positions
    with torch.no_grad():
        packed = pack_padded_sequence(
            model.emb(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = nn.utils.rnn.pad_packed_sequence(model.rnn(packed)[0], batch_first=True)
    for b in range(5):
        seq = d.sequence(b)
        n = int(lengths[b])
        for direction in (0, 1):
            v = seq[(1, direction)]
            assert v["positions"].tolist() == list(range(n))
            ref = out[b, :n, 4 * direction : 4 * direction + 4].numpy()
            np.testing.assert_allclose(v["h"], ref, rtol=0, atol=1e-13)
            assert set(v["gates"]) == {"i", "f", "g", "o"}


def test_window_and_batch_selection_stay_exact():
    torch.manual_seed(1)
    model = Sentiment().double()
    tokens, lengths, y = sentiment_batch(1)
    with watch(model.rnn) as w:
        nn.functional.cross_entropy(model(tokens, lengths), y).backward()
    full = w.dissection()
    win = w.dissection(window=(1, 3))
    assert_grads(win, model.rnn, 1e-9)  # totals come from the whole sequence
    for b in range(5):
        for key, v in win.sequence(b).items():
            ref = full.sequence(b)[key]
            n = int(lengths[b])
            assert v["positions"].tolist() == list(range(1, min(3, n)))
            np.testing.assert_allclose(v["h"], ref["h"][1:3], atol=1e-14)
            np.testing.assert_allclose(v["dh"], ref["dh"][1:3], atol=1e-14)
            np.testing.assert_allclose(v["dc"], ref["dc"][1:3], atol=1e-14)
    some = w.dissection(batch=[1, 3])  # the two length-6 sequences, one group
    assert not some.complete and some.batch.tolist() == [1, 3]
    with pytest.raises(UserError, match="only 2 of 5 sequences"):
        some.check(model.rnn)
    for name in ("weight_hh_l0", "weight_ih_l1_reverse"):
        both = full.part(0, 0, 1).grads if name.endswith("l0") else full.part(1, 1, 1).grads
        np.testing.assert_allclose(some.grads[name], both[name], rtol=1e-12)


class Tagger(nn.Module):
    def __init__(self, inp=3, hidden=5, tags=4):
        super().__init__()
        self.rnn = nn.GRU(inp, hidden)  # (T, B, I): not batch_first
        self.out = nn.Linear(hidden, tags)

    def forward(self, x, h0=None):
        return self.out(self.rnn(x, h0)[0])  # (T, B, tags)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_tagger_gru_loss_at_every_step(dtype, tol):
    torch.manual_seed(2)
    model = Tagger().to(dtype)
    x = torch.randn(7, 3, 3, dtype=dtype)
    h0 = torch.randn(1, 3, 5, dtype=dtype, requires_grad=True)
    tags = torch.randint(0, 4, (7, 3))
    with watch(model.rnn) as w:
        logits = model(x, h0)
    # backward after the block: the gradient hooks stay on the outputs
    nn.functional.cross_entropy(logits.reshape(-1, 4), tags.reshape(-1)).backward()
    d = w.dissection()
    assert_grads(d, model.rnn, tol)
    assert rel(d.grads["h0"], h0.grad) <= tol
    assert_terms_sum(d)
    assert d.call.dtype == str(dtype).replace("torch.", "")


class Seq2Seq(nn.Module):
    """Encoder RNN (relu) → its h_n starts a GRU decoder run one step per call."""

    def __init__(self):
        super().__init__()
        self.enc = nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True)
        self.dec = nn.GRU(2, 4, num_layers=2, batch_first=True)
        self.out = nn.Linear(4, 2)

    def forward(self, src, tgt_in):
        _, h = self.enc(src)
        outs = []
        for t in range(tgt_in.shape[1]):  # teacher forcing, one step per call
            o, h = self.dec(tgt_in[:, t : t + 1], h)
            outs.append(self.out(o))
        return torch.cat(outs, 1)


def test_encoder_decoder_two_modules_several_calls():
    torch.manual_seed(3)
    model = Seq2Seq().double()
    src, tgt = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 4, 2, dtype=torch.float64)
    with watch({"encoder": model.enc, "decoder": model.dec}) as w:
        ((model(src, tgt) - tgt) ** 2).mean().backward()
    assert [c.label for c in w.calls] == ["encoder#0"] + [f"decoder#{i}" for i in range(4)]
    with pytest.raises(UserError, match="5 calls recorded"):
        w.dissection()
    enc = w.dissection(model.enc)
    assert_grads(enc, model.enc, 1e-9)
    assert_terms_sum(enc)
    decs = w[model.dec]
    for name, _ in model.dec.named_parameters():
        total = sum(d.grads[name] for d in decs)  # .grad accumulated over the four calls
        assert rel(total, getattr(model.dec, name).grad) <= 1e-9
    # what reached the encoder's h_n is what the first decoder call sent to its h0
    np.testing.assert_allclose(decs[0].grads["h0"], enc.call.g_hn, rtol=1e-10, atol=1e-15)


def run_twice(watched: bool):
    torch.manual_seed(4)
    model = Sentiment()  # float32, the usual case
    tokens, lengths, y = sentiment_batch(4)
    if watched:
        with watch(model.rnn) as w:
            logits = model(tokens, lengths)
            nn.functional.cross_entropy(logits, y).backward()
        assert w.dissection().check(model.rnn) <= 1e-4  # float32 model, float64 replay
    else:
        logits = model(tokens, lengths)
        nn.functional.cross_entropy(logits, y).backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_watching_changes_nothing_bitwise():
    (a, ga), (b, gb) = run_twice(False), run_twice(True)
    assert torch.equal(a, b)
    assert ga.keys() == gb.keys() and all(torch.equal(ga[k], gb[k]) for k in ga)


def test_refusals_are_one_clear_line():
    seen = []

    def refused(match, fn, *args, **kw):
        with pytest.raises(UserError, match=match) as e:
            fn(*args, **kw)
        seen.append(str(e.value))

    refused(re.escape("takes torch.nn.RNN, LSTM or GRU"), watch, nn.Linear(3, 4))
    m = nn.GRU(3, 4, num_layers=2, dropout=0.5).eval()  # training-mode dropout: test_watch_models
    with watch(m) as w, torch.no_grad():
        m(torch.randn(4, 2, 3))
    refused("no gradient reached", w.dissection)
    big = nn.LSTM(8, 64)
    with watch(big, max_bytes=4 << 20) as w:
        big(torch.randn(50, 4, 8))[0].sum().backward()
    refused(r"needs about \d+ MiB, above max_bytes=4 MiB: pick fewer", w.dissection)
    d = w.dissection(batch=[0], window=(0, 3))  # small enough
    assert d.batch.tolist() == [0] and d.part().dissection.run.T == 3
    for bad, msg in [({"batch": [7]}, "in 0..3"), ({"window": (5, 2)}, "start < stop")]:
        refused(re.escape(msg), w.dissection, **bad)
    assert len(seen) == 5 and not any("\n" in m for m in seen), seen


def test_budget_estimate_bounds_the_graph():
    m = nn.LSTM(3, 16, num_layers=2, bidirectional=True).double()
    with watch(m) as w:
        m(torch.randn(9, 3, 3, dtype=torch.float64))[0].sum().backward()
    from rnn_dissect.watch.budget import estimate
    from rnn_dissect.watch.select import plan

    call = w.calls[0]
    est = estimate(call, [(len(g.batch), g.n, g.start, g.stop) for g in plan(call)])
    d = w.dissection()
    held = 0
    for p in d.parts:
        run = p.dissection.run
        held += sum(
            n.value.nbytes + (0 if n.grad is None else n.grad.nbytes) for n in run.graph.nodes
        )
        held += sum(sum(a.nbytes for a in v) for v in p.dissection.step.contributions.values())
    assert 0.7 * held <= est <= 1.5 * held


def test_save_writes_documents_the_explorer_opens(tmp_path):
    torch.manual_seed(5)
    model = Tagger().double()
    with watch(model.rnn) as w:
        model(torch.randn(4, 2, 3, dtype=torch.float64)).sum().backward()
    d = w.dissection()
    d.save(tmp_path)
    doc = json.loads((tmp_path / "dissection.json").read_text())
    assert doc["format"] == "rnn-dissect/dissection" and doc["config"]["module"] == "GRU#0"
    np.testing.assert_allclose(doc["grads"]["weight_hh_l0"], d.grads["weight_hh_l0"], rtol=1e-15)
    summary = json.loads((tmp_path / "watch.json").read_text())
    assert summary["complete"] and summary["parts"][0]["dir"] == "l0.fwd.g0"
    assert (tmp_path / "parts" / "l0.fwd.g0" / "dissection.json").is_file()
    from rnn_dissect.reports.explore import tensor
    from rnn_dissect.reports.explore_session import open_source

    data = open_source(str(tmp_path)).data()  # what `rnn-dissect explore DIR` serves
    assert data["format"] == "rnn-dissect/explore"
    nodes = {n["id"]: n for n in data["dissection"]["nodes"]}
    h = tensor(data, nodes["t3.l0.h"]["value"])  # (B, H) at step 3, both sequences
    np.testing.assert_array_equal(h, np.stack([d.sequence(b)[(0, 0)]["h"][2] for b in (0, 1)]))
    # the final state's term ⟨g_hn, h_T⟩ belongs to no step: with the total it is the tail
    # (t None), and the layout gives each of its nodes the tail slot of its own id
    tail = {k: p["slot"] for k, p in data["layout"]["place"].items() if p["row"] == "tail"}
    assert tail == {k: k for k in ("hn.g", "hn.gh", "hn.loss", "loss")}, tail
    assert [nodes[k]["t"] for k in tail] == [None] * 4
    assert nodes["loss"]["parents"] == [f"t{t}.loss" for t in (1, 2, 3, 4)] + ["hn.loss"]
    from rnn_dissect.cli import main

    page = tmp_path / "page.html"
    assert main(["explore", str(tmp_path), "--export", str(page)]) == 0
    assert page.stat().st_size > 10_000


def test_neurons_score_with_the_neurons_ranking():
    torch.manual_seed(6)
    m = nn.RNN(2, 3, batch_first=True).double()
    x = torch.randn(4, 6, 2, dtype=torch.float64)
    with watch(m) as w:
        out, _ = m(x)
        out.sum().backward()
    d = w.dissection()
    feature = x[..., 0].numpy()  # (B, T) per-step feature
    flag = (x[..., 1] > 0).double().numpy()
    s = d.neurons({"x0": feature, "x1>0": flag})
    assert s.features == ["x0", "x1>0"] and s.boolean == [False, True]
    o = out.detach().numpy().reshape(-1, 3)  # torch's outputs, sequence by sequence
    for j in range(3):
        r = np.corrcoef(feature.ravel(), o[:, j])[0, 1]
        assert s.score[0, j] == pytest.approx(r, abs=1e-6)  # features are float32
        pos, neg = o[flag.ravel() > 0, j], o[flag.ravel() == 0, j]
        auc = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
            pos.size * neg.size
        )
        assert s.score[1, j] == pytest.approx(2 * auc - 1, abs=1e-9)


def test_without_torch_import_works_and_watch_is_one_line():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import rnn_dissect\nfrom rnn_dissect import watch\n"
        "from rnn_dissect.errors import UserError\n"
        "try:\n    watch(object())\nexcept UserError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        out.stdout.strip()
        == "watch needs PyTorch: pip install 'rnn-dissect[torch]' (or torch itself)"
    )


def test_the_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = NOTES.read_text(encoding="utf-8")
    block = re.search(r"<!-- readme-example -->\n```python\n(.*?)```", text, re.S)
    assert block, "docs/notes/issue-16.md lost its README example"
    scope: dict = {}
    exec(compile(block.group(1), str(NOTES), "exec"), scope)
    assert scope["d"].check(scope["model"].encoder) <= 1e-4
    assert scope["d"].grads["weight_hh_l1_reverse"].shape == (96, 24)  # as its comment says
    assert (tmp_path / "out" / "watch" / "explore.json").is_file()


@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
def test_unbatched_input_no_bias_and_a_given_initial_state(cell):
    torch.manual_seed(7)
    kw = {"nonlinearity": "relu"} if cell == "RNN" else {}
    m = getattr(nn, cell)(3, 4, num_layers=2, bias=False, bidirectional=True, **kw).double()
    x = torch.randn(6, 3, dtype=torch.float64)  # (T, I): no batch axis
    h0 = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)  # (L·D, H)
    c0 = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    with watch(m) as w:
        out, state = m(x, (h0, c0) if cell == "LSTM" else h0)
        h_n = state[0] if cell == "LSTM" else state
        (out.sin().sum() + h_n.pow(2).sum()).backward()
    d = w.dissection()
    assert "bias_ih_l0" not in d.grads
    assert_grads(d, m, 1e-9)
    assert rel(d.grads["h0"][:, 0], h0.grad) <= 1e-9
    for p in d.parts:  # the forward cache, measured tensor by tensor = its closed form
        assert p.dissection.memory.measured_bytes == p.dissection.memory.formula_bytes
    states = {"RNN": 1, "GRU": 6, "LSTM": 7}[cell] * 6 + 1 - (cell != "RNN")  # per layer-direction
    inputs = [3, 3, 8, 8]  # layer 1 reads both directions of layer 0
    assert d.cache_bytes == sum(8 * (states * 4 + 6 * i) for i in inputs)
    if cell == "LSTM":
        assert rel(d.grads["c0"][:, 0], c0.grad) <= 1e-9


@pytest.mark.parametrize("cell", ["RNN", "GRU"])
def test_window_exact_for_rnn_and_gru_both_directions(cell):
    torch.manual_seed(8)
    m = getattr(nn, cell)(2, 3, num_layers=2, bidirectional=True, batch_first=True).double()
    with watch(m) as w:
        out, h_n = m(torch.randn(2, 7, 2, dtype=torch.float64))
        (out.tanh().sum() + h_n.pow(2).sum()).backward()
    full, win = w.dissection(), w.dissection(window=(2, 5))
    assert_grads(win, m, 1e-9)
    for key, v in win.sequence(1).items():
        ref = full.sequence(1)[key]
        assert v["positions"].tolist() == [2, 3, 4]
        np.testing.assert_allclose(v["h"], ref["h"][2:5], rtol=0, atol=1e-15)
        np.testing.assert_allclose(v["dh"], ref["dh"][2:5], rtol=1e-12, atol=1e-15)
    with pytest.raises(UserError, match="unknown option"):
        watch(m, bach=[0])
