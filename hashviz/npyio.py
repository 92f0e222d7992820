"""One lock around numpy's ``.npy`` header parsing.

numpy parses every ``.npy`` header with ``ast.literal_eval``; on CPython 3.11 two threads doing that at once can
fail with ``SystemError: AST constructor recursion depth mismatch`` (python/cpython#106905). The app reads run-store
arrays from its script threads and from background jobs, so every header hashviz parses goes through
:data:`HEADER_LOCK`. The data itself is read outside the lock where the reader allows it."""

from __future__ import annotations

import threading

#: held while numpy parses a .npy header (np.load of an .npy/.npz member, read_array_header_*)
HEADER_LOCK = threading.RLock()
