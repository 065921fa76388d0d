"""Training character models fast: data, kernels, optimizer loop, run directory, sampling.

- ``config.py``   ``TrainConfig`` (one field per ``train`` flag), the learning-rate schedule.
- ``loop.py``     the training loop: truncated BPTT, evaluation, Ctrl-C.
- ``budget.py``   ``--minutes``: how many steps fit, re-measured while the machine's speed drifts.
- ``rundir.py``   the run directory's files, atomic writes, trainer state, resume.
- ``data.py``     corpora (files or the stdlib default), vocabulary, memory-mapped encoding, streams.
- ``sample.py``   temperature / top-k sampling.
- ``kernels/``    fused numpy forward+backward over whole sequences (float32 to train).
"""
