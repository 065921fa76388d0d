"""The networks, as equations: cells recorded node by node, the char model, the 3:1:1 net.

- ``cells.py``  RNN / LSTM / GRU steps recorded into a graph (PyTorch's equations, gate order, names).
- ``model.py``  the char model's config (one-hot in → stacked cells → linear head) and torch-named parameters.
- ``forward.py``  the char model's forward pass in numpy, step by step, recording every h, c and gate.
- ``torch_forward.py``  the same through PyTorch (``--backend torch``): fused kernels, gates at once.
- ``mlp.py``    the I:H:O network (default 3:1:1: ReLU hidden, sigmoid output, log loss) with one SGD step.
"""
