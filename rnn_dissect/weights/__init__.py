"""Weights on disk and across libraries: never a pickle.

- ``safetensors_file.py``  the safetensors container, read defensively, written atomically.
- ``checkpoint.py``        a model as one ``.safetensors`` file with metadata; validation.
- ``interop.py``           ``from_torch`` / ``to_torch`` / state-dict import (optional torch).
"""
