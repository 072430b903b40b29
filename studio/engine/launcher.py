"""Run torchrun as a child process for `studio train --nproc N`, forwarding Ctrl-C to it.

torchrun gets its own session, so a Ctrl-C in the terminal reaches it once, from here: torchrun
passes SIGINT on to every rank, each stops at its next step boundary, and rank 0 saves last.pt
and summary.json. A second Ctrl-C is passed on too (torchrun then ends the ranks).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence

from studio.engine.distributed import child_environment
from studio.errors import StudioError


def run_torchrun(command: Sequence[str]) -> int:
    """Run `command` (from `distributed.torchrun_command`) to its end; the exit code as `studio train` returns it.

    0 when every rank finished, 130 after a Ctrl-C, 1 when a rank failed (its error is printed above).
    """
    try:
        proc = subprocess.Popen(list(command), env=child_environment(), start_new_session=True)
    except OSError as exc:
        raise StudioError(f"could not start torchrun ({command[0]}): {exc.strerror or exc}") from None
    interrupted = False
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
            print("\nstopping: every process saves at its next step (Ctrl-C again to end them)", file=sys.stderr)
            try:
                proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
    if interrupted:
        return 130
    return 0 if code == 0 else 1
