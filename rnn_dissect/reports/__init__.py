"""What a command writes: orchestration of analysis and rendering into files and the terminal.

The CLI parses flags and makes one call here; each module below is one command's pipeline.

- ``rnn.py``            ``rnn`` and ``dissect``: size plan, dissection, summary, the three files.
- ``torch_check.py``    ``dissect --backend torch``: PyTorch's forward beside the exact one.
- ``nn.py``             ``nn``: the I:H:O network's table, document and files.
- ``flow.py``           ``flow``: RNN vs LSTM vs GRU gradient reach, table, JSON and plot.
- ``neurons.py``        ``neurons``: collect, score, write the report, print the best units.
- ``neuron_inputs.py``  what ``neurons`` reads: text, ``--unit``/``--regex`` specs, snapshots.
- ``watch_page.py``     ``watch``'s ``d.save(DIR)``: the explorer page of the main part.
"""
