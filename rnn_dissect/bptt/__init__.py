"""Backpropagation through time, recorded and answered as plain data (no drawing here).

- ``recording.py``   stacked layers recorded step by step (any model): what every analysis reads.
- ``unroll.py``      the char model unrolled into one graph (h0/c0, truncation, many-to-one).
- ``checks.py``      what an unroll accepts, checked up front.
- ``stepgrads.py``   Q2: per-step, per-gate weight-gradient terms and the update ΔW.
- ``carry.py``       Q1/Q4: dL/dh_t direct vs recurrent, dh_next, dc_next, dh_raw.
- ``gradflow.py``    Q1: step Jacobians, singular values, lag matrix, verdict.
- ``memory.py``      Q3: the forward cache, measured and predicted.
- ``frames.py``      step-through frames (forward 1..T, backward T..1).
- ``dissection.py``  the ``Dissection`` result and its ``dissection.json`` document.
- ``reach.py``       RNN vs LSTM vs GRU: how far back the gradient reaches, with a reading.
"""
