"""Running uvicorn until SIGTERM or SIGINT, then stopping gracefully with exit status 0.

On either signal uvicorn closes the listening socket (new connections are refused), lets
the requests in flight finish for up to ``graceful_timeout`` seconds (then cancels them),
runs the app's shutdown and returns. Two things stood in the way:

- Paddle's import installs a C++ SIGTERM handler that aborts with a "FatalError:
  Termination signal" banner; ``paddle_runtime.import_paddle`` puts Python's handler
  (here: uvicorn's) back.
- After a graceful stop uvicorn re-raises the signal it caught under the handler that was
  installed before it started, which for SIGTERM is the default action (the process dies
  with status -15, as if it had not stopped gracefully). The handlers installed here
  instead only note the signal, so the run ends normally with status 0.
"""
from __future__ import annotations

import logging
import signal
from typing import List

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
log = logging.getLogger("paddleface.serve")


def serve(app: str, *, host: str, port: int, workers: int, access_log: bool,
          graceful_timeout: float) -> int:
    """``uvicorn.run(app, factory=True, ...)`` that returns 0 after a signal-initiated stop."""
    import uvicorn

    received: List[int] = []
    previous = {sig: signal.signal(sig, lambda sig, frame: received.append(sig))
                for sig in STOP_SIGNALS}
    try:
        uvicorn.run(app, factory=True, host=host, port=port, workers=workers,
                    access_log=access_log, timeout_graceful_shutdown=graceful_timeout)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        log.info("stopped on %s", signal.Signals(received[0]).name)
    return 0
