"""Run torchrun as a child process for `studio train --nproc N`, passing Ctrl-C on as a clean stop.

torchrun gets its own session, so a Ctrl-C in the terminal reaches the run only through here. The
first one writes `"stop": true` into the run's control.json: rank 0 reads it at its next step
boundary and broadcasts it, every rank stops at that step, rank 0 saves last.pt and summary.json
(status stopped), and torchrun ends quietly. A second Ctrl-C sends SIGINT to torchrun, which
passes it to every rank (rank 0 stops as above; torchrun ends the others if they hang).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from studio.engine.control_file import write_control
from studio.engine.distributed import child_environment
from studio.errors import StudioError


def run_torchrun(command: Sequence[str], control_path: Path | None = None) -> int:
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
            if not interrupted and control_path is not None:
                print("\nstopping: every process stops at its next step (Ctrl-C again to end them)", file=sys.stderr)
                try:
                    write_control(control_path, stop=True)
                except OSError:
                    _signal(proc)
            else:
                _signal(proc)
            interrupted = True
    if interrupted:
        return 130
    return 0 if code == 0 else 1


def _signal(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.send_signal(signal.SIGINT)
    except ProcessLookupError:
        pass
