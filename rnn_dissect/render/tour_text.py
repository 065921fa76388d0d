"""The words of "Dissecting the RNN": sections of prose templates, equations and figure slots.

A section is ``(id, heading, blocks)``; a block is ``("p", template)`` (prose),
``("eq", template)`` (an equation line), ``("fig", name)`` or ``("html", name)`` (a figure
or table the page draws, :mod:`rnn_dissect.render.tour_page`). Templates hold no number of
their own: ``{key}`` is replaced by ``numbers[key]`` (:func:`fill`), ``{key.*}`` by every
``key.1``, ``key.2``, … in order, joined by commas. Prose paragraphs contain no digit at all
outside those slots (the tests check), so every number a reader sees was computed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["CREDITS", "INTRO", "SECTIONS", "fill", "fmt"]

KARPATHY = "https://karpathy.github.io/2015/05/21/rnn-effectiveness/"
MIN_CHAR_RNN = "https://gist.github.com/karpathy/d4dee566867f8291f086"
COLAH = "https://colah.github.io/posts/2015-08-Understanding-LSTMs/"
VISUALIZING = "https://arxiv.org/abs/1506.02078"


def _a(href: str, text: str) -> str:
    return f'<a href="{href}">{text}</a>'


INTRO = [
    "This post takes a recurrent network apart, one number at a time. It is written for "
    f"someone who has read Andrej Karpathy's {_a(KARPATHY, 'The Unreasonable Effectiveness of Recurrent Neural Networks')} "
    f"(and played with {_a(MIN_CHAR_RNN, 'min-char-rnn')}) and Christopher Olah's "
    f"{_a(COLAH, 'Understanding LSTM Networks')}, and wants to see the insides: every value, "
    "every gradient, and what the backward pass has to keep.",
    "Nothing here was typed in by hand. The page was written by <code>rnn-dissect tour</code> "
    "in {run.seconds} seconds on this machine: every figure and every number in the text "
    "comes from that run (they are all in <code>tour.json</code> beside this page). The "
    "dissections are exact, in double precision, and agree with PyTorch's autograd.",
]

CREDITS = [
    f"The character-level model, the “hello” example and the idea of looking at single "
    f"neurons come from Karpathy's {_a(KARPATHY, 'post')}, his {_a(MIN_CHAR_RNN, 'min-char-rnn')} "
    f"and Karpathy, Johnson and Fei-Fei's {_a(VISUALIZING, 'Visualizing and Understanding Recurrent Networks')}; "
    f"the LSTM's picture — the cell state as a straight highway, the gates as boxes — is "
    f"Christopher Olah's, from {_a(COLAH, 'Understanding LSTM Networks')}.",
    "Run it yourself: <code>rnn-dissect tour --out DIR --minutes M --corpus FILE</code>. Every "
    "part is also a command of its own: <code>nn</code>, <code>rnn</code>, <code>flow</code>, "
    "<code>train</code>, <code>neurons</code>, <code>explore</code>.",
]

Block = tuple[str, str]

SECTIONS: list[tuple[str, str, list[Block]]] = [
    (
        "nn",
        "A network you can hold in your head",
        [
            (
                "p",
                "Start without time. The {nn.sizes} network has three inputs, one hidden "
                "unit with a ReLU, and one output squashed by a sigmoid into a probability ŷ; "
                "the loss is the log loss of the target y = {nn.y}. The graph shows every node "
                "of the computation, coloured by its kind, with its value and its gradient "
                "∇ = dL/d(node).",
            ),
            ("fig", "nn_graph"),
            ("p", "The forward pass, with this run's numbers put in:"),
            ("eq", "z₁ = W₁·x + b₁ = {nn.z1}   h = ReLU(z₁) = {nn.h}   z₂ = W₂·h + b₂ = {nn.z2}"),
            ("eq", "ŷ = σ(z₂) = {nn.yhat}   L = −[y·log ŷ + (1 − y)·log(1 − ŷ)] = {nn.loss}"),
            (
                "p",
                "The backward pass is the chain rule, read right to left. Each node "
                "multiplies the gradient it receives by its own local derivative and passes it "
                "on; the sigmoid and the log loss together collapse to the tidy ŷ − y.",
            ),
            (
                "eq",
                "dL/dŷ = −y/ŷ = {nn.d_yhat}   dŷ/dz₂ = ŷ(1 − ŷ) = {nn.dsigma}   "
                "dL/dz₂ = ŷ − y = {nn.d_z2}",
            ),
            (
                "eq",
                "dL/dh = dL/dz₂ · W₂ = {nn.d_h}   dL/dz₁ = dL/dh · [z₁ > 0] = {nn.d_z1}   "
                "dL/dW₁[0] = dL/dz₁ · x[0] = {nn.d_W1_0}",
            ),
            (
                "p",
                "One step of gradient descent with learning rate {nn.lr} moves every weight "
                "against its gradient — W₂ goes to {nn.W2_new} — and the loss on the same example "
                "drops from {nn.loss} to {nn.loss_after}.",
            ),
            ("eq", "W ← W − lr · dL/dW"),
            (
                "p",
                "Now flip the input. The hidden unit's pre-activation becomes z₁ = {nn.off.z1}, "
                "the ReLU outputs {nn.off.h}, and its derivative is zero. The gradient still "
                "arrives at h (dL/dh = {nn.off.d_h}) but stops there: dL/dz₁ = {nn.off.d_z1}, so "
                "‖dL/dW₁‖ = {nn.off.d_W1_norm} and the first layer learns nothing from this "
                "example. Even W₂ gets dL/dW₂ = {nn.off.d_W2}, because it multiplied an h of zero.",
            ),
            ("fig", "nn_off_graph"),
        ],
    ),
    (
        "rnn",
        "The same idea, unrolled through time",
        [
            (
                "p",
                "A recurrent network is the network above with a loop: the hidden layer also "
                "reads its own previous value. min-char-rnn's example reads “{rnn.text}” one "
                "character at a time — inputs “{rnn.inputs}”, targets “{rnn.targets}” — and "
                "predicts the next character at every step. Unrolled over the T = {rnn.T} steps "
                "it is one long feed-forward graph, and everything from the first section applies.",
            ),
            (
                "eq",
                "h_t = tanh(W_ih·x_t + b_ih + W_hh·h_(t−1) + b_hh)   "
                "z_t = W_hy·h_t + b_y   L = mean_t −log softmax(z_t)[target_t]",
            ),
            (
                "p",
                "Two things change. The hidden state function takes the previous state as a "
                "second input, so what the network read earlier can matter now. And the weights "
                "are shared: the same W_ih, W_hh and head are used at every step (drawn once, at "
                "the left of the graph, lit when a step reads them). This network has H = {rnn.H} "
                "hidden units and a vocabulary of V = {rnn.V} characters, {rnn.params} parameters "
                "in all; untrained, its loss is {rnn.loss} nats per character.",
            ),
            (
                "p",
                "Step through it below: ▶ (or the arrow keys) walks the forward pass step by "
                "step, then the backward pass from the last step to the first. Click any node to "
                "see its equation with the numbers put in, and where its gradient came from.",
            ),
            ("fig", "rnn_explorer"),
        ],
    ),
    (
        "q1",
        "Q1 · How do gradients flow backwards through time?",
        [
            (
                "p",
                "The gradient at h_t has two sources: the direct part, from the loss at the "
                "same step, and the recurrent part dh_next, carried back from the step after. At "
                "the last step only the direct part exists; at the first, dh_next = {rnn.dh_next.1}.",
            ),
            ("fig", "q1_bars"),
            (
                "p",
                "Each step back multiplies the carried gradient by the step Jacobian, the "
                "derivative of one hidden state with respect to the one before:",
            ),
            ("eq", "∂h_t/∂h_(t−1) = diag(1 − h_t²) · W_hh"),
            (
                "p",
                "Its largest singular value averages "
                "{rnn.sigma_geomean} here, so the gradient shrinks as it goes: the last step's "
                "loss reaches h at the last step with norm {rnn.lag_near}, the first step's h "
                "with only {rnn.lag_far}. The lag matrix shows all such pairs (row: the loss term, "
                "column: the state it reaches).",
            ),
            ("fig", "q1_lag"),
            (
                "p",
                "On a longer sentence (T = {flow.T}, H = {flow.H}, untrained weights) the last "
                "loss term's gradient falls below {flow.fall} of its peak {flow.rnn.reach} steps "
                "back in the vanilla RNN (×{flow.rnn.decay} per step), {flow.lstm.reach} steps back "
                "in an LSTM and {flow.gru.reach} in a GRU. This is the vanishing gradient, measured.",
            ),
            ("fig", "q1_reach"),
        ],
    ),
    (
        "q2",
        "Q2 · How are the shared weights updated through time?",
        [
            (
                "p",
                "W_hh is used at every step, so it collects one gradient term per step, and "
                "its gradient is their sum. Here the terms have norms {rnn.term.*} (the first "
                "multiplies the initial state, whose norm is {rnn.h0_norm}); summed, they "
                "give dL/dW_hh (norm {rnn.whh_norm}) to within {rnn.whh_sum_err} — rounding, "
                "nothing more.",
            ),
            ("eq", "dL/dW_hh = Σ_t dL/da_t · h_(t−1)ᵀ   (a_t: the pre-activation at step t)"),
            ("fig", "q2_terms"),
            (
                "p",
                "The update is then made once, from the sum: with plain SGD and learning rate "
                "{rnn.lr}, ΔW_hh = −lr · dL/dW_hh has norm {rnn.whh_delta_norm}. The global "
                "gradient norm over every parameter is {rnn.grad_norm} — the number that gradient "
                "clipping looks at.",
            ),
        ],
    ),
    (
        "q3",
        "Q3 · What must be kept while propagating forward?",
        [
            (
                "p",
                "The backward pass needs values from the forward pass: tanh's derivative is "
                "one minus h squared, and W_hh's gradient needs every previous h. So the forward "
                "pass keeps them. Measured tensor by tensor, the RNN keeps {rnn.mem.measured} "
                "bytes — exactly the formula's {rnn.mem.formula}: {rnn.mem.states} for the states, "
                "{rnn.mem.inputs} for the inputs and {rnn.mem.head} for the head's probabilities.",
            ),
            ("fig", "q3_bytes"),
            (
                "p",
                "An LSTM keeps its four gates and its cell state too: {lstm.mem.states} bytes "
                "of states against the RNN's {rnn.mem.states}, and {lstm.mem.measured} bytes in "
                "all against the RNN's {rnn.mem.measured}. Every term grows linearly with the "
                "number of steps — which is why long sequences are trained in truncated chunks.",
            ),
        ],
    ),
    (
        "q4",
        "Q4 · What travels in the backward pass?",
        [
            (
                "p",
                "Going backward, each step hands the previous one a gradient instead of a "
                "state. In the RNN that is dh_next, and inside the step dh_raw, the gradient after "
                "the tanh (min-char-rnn's <code>dhraw</code>). At the first step the RNN receives "
                "dh_next with norm {rnn.dh_next.1}.",
            ),
            (
                "p",
                "The LSTM hands back two vectors: dh_next and dc_next, the gradient of the "
                "cell state. At its first step they have norms {lstm.dh_next.1} and "
                "{lstm.dc_next.1}. The second one is the reason the LSTM exists.",
            ),
            ("fig", "q4_carry"),
        ],
    ),
    (
        "lstm",
        "The LSTM: gates made visible",
        [
            (
                "p",
                "In colah's picture the cell state runs straight along the top, and the gates "
                "decide what to forget (f), what to write (i, with candidate g) and what to show (o). "
                "Averaged over the steps and units of this untrained LSTM, the gates sit at "
                "f = {lstm.gate.f}, i = {lstm.gate.i} and o = {lstm.gate.o}; the candidate g "
                "averages {lstm.gate.g}.",
            ),
            (
                "eq",
                "c_t = f_t ⊙ c_(t−1) + i_t ⊙ g_t   h_t = o_t ⊙ tanh(c_t)   "
                "dc_(t−1) = dc_t ⊙ f_t + (the part through h_(t−1))",
            ),
            (
                "p",
                "The cell path is why the gradient travels further. Going back one step along "
                "c multiplies by the forget gate, element by element — no weight matrix and no "
                "squashing derivative in the way. With f near one the gradient passes almost "
                "untouched. That is what the flow comparison above measured: {flow.lstm.reach} "
                "steps of reach for the LSTM against {flow.rnn.reach} for the RNN, a decay of "
                "×{flow.lstm.decay} per step against ×{flow.rnn.decay}.",
            ),
            ("fig", "lstm_gates"),
            (
                "p",
                "The same “{lstm.text}”, through an LSTM with H = {lstm.H} (loss "
                "{lstm.loss}). Open a cell to see its gates compute; step backward to watch "
                "dc_next flow along the top.",
            ),
            ("fig", "lstm_explorer"),
        ],
    ),
    (
        "neurons",
        "How neurons tune themselves",
        [
            (
                "p",
                "Now train one. A small {train.cell} (layers × units per layer: {train.L} × {train.H}, "
                "vocabulary of {train.vocab} characters) trained for {train.seconds} seconds on "
                "this machine: {train.steps} steps, {train.chars} characters read. Its best "
                "validation loss was {train.best_val} nats per character. This is what it "
                "writes now:",
            ),
            ("html", "sample"),
            (
                "p",
                "Which units learned to detect something? The analysis reads "
                "{neurons.n_chars} characters of validation text, records every unit and gate, "
                "and scores each against {neurons.features} simple features of the text — inside "
                "a quote, bracket depth, position in the line, indentation, character classes — by "
                "correlation (or by the area under the ROC curve for yes/no features). "
                "{neurons.strong} features have a unit scoring at least {neurons.strong_at} in "
                "absolute value.",
            ),
            ("html", "detectors"),
            (
                "p",
                "Character classes are easy: the input says what the character is. Features "
                "that need memory are the interesting ones. The best of them here is "
                "{neurons.memory.feature}, tracked by {neurons.memory.unit} with a score of "
                "{neurons.memory.score}.",
            ),
            (
                "p",
                "How did the units get there? During training the run saved {neurons.snapshots} "
                "snapshots, from step {neurons.first_step} to step {neurons.last_step}. Here is one "
                "unit over the same probe text at each snapshot — blue negative, red positive — "
                "watch it tune itself:",
            ),
            ("fig", "tuning_unit"),
            (
                "p",
                "Each feature's best unit on the probe text — ranked at the last snapshot, so it "
                "can be another unit than the table's, which is ranked on the longer validation "
                "text — scored at every snapshot. The table's last column gives that unit and "
                "the first step at which its score reached ±{neurons.threshold}.",
            ),
            ("fig", "score_curves"),
            (
                "p",
                "And where units respond most: their strongest contexts in the validation text.",
            ),
            ("fig", "contexts"),
        ],
    ),
]

_SLOT = re.compile(r"\{([A-Za-z0-9_.]+?)(\.\*)?\}")


def fmt(v: Any) -> str:
    """A number as the page writes it: ints in full, floats to 4 significant digits,
    None as a dash; strings as they are."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        s = f"{v + 0.0:.4g}"  # + 0.0: a negative zero is written 0, not −0
        if "e" in s:
            m, e = s.split("e")
            s = f"{m}e{int(e)}"
        return s.replace("-", "−")
    return str(v)


def span(numbers: Mapping[str, Any], key: str) -> str:
    """``numbers[key]`` as a tagged span: ``<span class="v" data-key=KEY>``."""
    return f'<span class="v" data-key="{html.escape(key)}">{html.escape(fmt(numbers[key]))}</span>'


def fill(template: str, numbers: Mapping[str, Any]) -> str:
    """``template`` (HTML) with every ``{key}`` / ``{key.*}`` slot replaced (KeyError for a
    key the run did not compute: a bug, never a silent gap)."""

    def one(m: re.Match[str]) -> str:
        key, many = m.group(1), m.group(2)
        if not many:
            return span(numbers, key)
        keys = sorted(
            (k for k in numbers if k.startswith(key + ".") and k[len(key) + 1 :].isdigit()),
            key=lambda k: int(k[len(key) + 1 :]),
        )
        if not keys:
            raise KeyError(key + ".*")
        return ", ".join(span(numbers, k) for k in keys)

    return _SLOT.sub(one, template)
