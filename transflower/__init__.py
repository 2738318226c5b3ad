"""transflower-live: real-time music-driven dance generation.

The core package is numpy-only at import time; torch is imported only by `transflower.models`,
`transflower.train` and `transflower.generate` (training side), never by the live path.
"""
__version__ = "0.1.0"
