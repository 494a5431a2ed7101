"""The ``roost`` command line: one module per command group.

Set before anything loads PyTorch, whose OpenMP runtime (GNU libgomp) reads them once:
the engine's OpenMP worker spins for a bounded time after each kernel, then sleeps. A
decode step is about a thousand short kernels a few microseconds apart. Left to its
defaults, the worker sleeps between them and each kernel pays a wake-up; told to spin
without bound (``OMP_WAIT_POLICY=ACTIVE`` alone), it burns the core that the server's
event loop and the clients need between steps. Served single-stream decode on 2 cores
(openai SDK, 128 tokens, docs/engine.md): ~33 tok/s with the defaults, ~35 sleeping
(``PASSIVE``), ~30 spinning without bound, ~45 with this bounded spin. Export either
variable to choose otherwise.
"""

import os

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
    os.environ["GOMP_SPINCOUNT"] = "100000"
