"""What a command writes: orchestration of analysis and rendering into files.

- ``neurons.py``  everything ``rnn-dissect neurons`` writes, in one call.
"""
