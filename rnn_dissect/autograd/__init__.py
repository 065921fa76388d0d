"""The engine: a recorded graph of tensor nodes, each op's forward beside its backward.

- ``engine.py``    ``Graph`` / ``Node`` / ``Kind``: recording, iterative backward, per-edge gradients, replay.
- ``ops.py``       every primitive op: forward, vector-Jacobian product, what it saves (one table).
- ``gradcheck.py`` central differences against any recorded graph.

Imports nothing else of the package but :mod:`rnn_dissect.errors`: the engine knows no model,
no analysis and no drawing.
"""
