"""Typed exceptions. Every user-facing error names where the problem is and how to fix it."""
from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text, keep_newlines=True) -> str:
    """``text`` with control characters (terminal escape sequences, bell, carriage return, C1 codes)
    shown as ``\\x1b`` etc., so that nothing echoed from a scenario file (names, paths, values) can
    move the cursor, retitle the terminal or overwrite earlier lines."""
    s = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(text))
    return s if keep_newlines else s.replace("\n", "\\n").replace("\t", "\\t")


class MicrocircuitError(Exception):
    """Base class of all errors raised by microcircuit for bad input or failed runs."""


class ScenarioError(MicrocircuitError, ValueError):
    """A scenario (file or dict) is invalid. Holds every problem found in one pass.

    Each problem is ``(path, message)`` where ``path`` is the dotted field path such as
    ``projections[2].target``.
    """

    def __init__(self, problems, source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f"{printable(source, False)}: " if source else ""
        lines = [f"{where}{len(self.problems)} problem(s) in scenario"]
        for path, msg in ((printable(p, False), printable(m, False)) for p, m in self.problems):
            lines.append(f"  {where}{path}: {msg}" if path else f"  {where}{msg}")
        super().__init__("\n".join(lines))


class CircuitError(MicrocircuitError, ValueError):
    """A circuit is inconsistent (unknown population, shape mismatch, bad parameter)."""


class SimulationError(MicrocircuitError, RuntimeError):
    """A run failed, e.g. the state diverged (NaN/Inf)."""


class DivergenceError(SimulationError):
    """Non-finite values appeared during a run.

    Attributes name the population, the variable, the step and the time, so the user can
    lower ``dt`` or the learning rate, or inspect the recording up to that point.
    """

    def __init__(self, population, variable, step, time, hint=""):
        self.population, self.variable, self.step, self.time = population, variable, step, time
        msg = (f"non-finite value (NaN/Inf) in population '{population}', variable '{variable}' "
               f"at step {step} (t = {time:g} ms). ")
        msg += hint or ("Lower simulation.dt or the learning rates (plasticity.eta), or check the "
                        "stimulus amplitudes; data recorded up to this step are kept.")
        super().__init__(msg)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM from ``kill``, a batch scheduler or a
    container runtime) while a run was going.

    Raised by the handler the CLI installs for the run (:func:`microcircuit.cli.signals_interrupt`).
    A KeyboardInterrupt, so that every place that stops a run cleanly on Ctrl-C does the same here:
    the store is closed as ``interrupted (SIGTERM) at step ...`` and stays resumable.
    """

    def __init__(self, signum: int):
        import signal

        self.signum = int(signum)
        self.signal_name = signal.Signals(signum).name
        super().__init__(self.signal_name)
