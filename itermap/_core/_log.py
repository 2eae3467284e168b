"""The ``itermap`` logger: what long runs decide, beside the warnings a user must see.

Modules log to ``logging.getLogger(__name__)``, children of ``itermap`` (the analysis too:
it is imported as ``itermap.analysis``). One line at each decision point: a fallback taken
(Newton's sequential path, a Householder QR, numba's plain loop), a method chosen, a
spaced-QR warning, a sweep point read from its cache. Silent by default, as the logging
HOWTO asks of a library: a NullHandler, so nothing reaches Python's last-resort handler
until an application configures logging, e.g.
``logging.basicConfig(); logging.getLogger("itermap").setLevel(logging.INFO)``.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("itermap")
logger.addHandler(logging.NullHandler())
