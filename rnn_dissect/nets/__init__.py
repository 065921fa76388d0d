"""The networks, as equations: cells recorded node by node, the char model, the 3:1:1 net.

- ``cells.py``  RNN / LSTM / GRU steps recorded into a graph (PyTorch's equations, gate order, names).
- ``model.py``  the char model's config (one-hot in → stacked cells → linear head; its cell,
  nonlinearity and state tensors), torch-named parameters, and the one check of parameters
  against a config (checkpoints, run directories and unrolls all use it).
- ``ids.py``    node ids (``t3.l0.h``): the one place that makes them and parses them back.
- ``forward.py``  the char model's forward pass in numpy, step by step, recording every h, c and gate.
- ``torch_forward.py``  the same through PyTorch (``--backend torch``): fused kernels, gates at once.
- ``mlp.py``    the I:H:O network (default 3:1:1: ReLU hidden, sigmoid output, log loss) with one SGD step.
"""
