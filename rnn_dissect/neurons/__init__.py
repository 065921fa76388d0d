"""What the neurons learned to track: activations over a text, features, scores, tuning.

- ``collect.py``      activations of every unit and gate over a text, streamed to disk.
- ``activations.py``  the activations data (memory-mapped on disk).
- ``features.py``     built-in and user hypothesis features over a text.
- ``scoring.py``      streaming Pearson r and ROC-AUC.
- ``ranking.py``      score every unit against every feature, rank, ``neurons.json``.
- ``extremes.py``     top contexts per unit, gate saturation.
- ``tuning.py``       how units tune over training, from snapshots.
"""
