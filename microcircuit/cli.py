"""Command line: ``microcircuit run | validate | info | sweep | models | schema``.

Bad input exits non-zero with a short message naming the file and field, never a traceback.
A run stopped by Ctrl-C or SIGTERM closes its store as ``interrupted`` (exit 130 / 143); one stopped
by an I/O error (full or read-only disk) closes it as ``failed`` when it still can (exit 4). Both
keep the records committed so far, and a store with a checkpoint continues with ``run --resume``.
"""
from __future__ import annotations

import argparse
import os
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from .errors import MicrocircuitError, DivergenceError, Terminated


_RESUME_OUT = "\0resume the --out store"   # --resume given without a STORE (no path holds a NUL)
EXIT_IO = 4   # exit code of a run stopped by an I/O error (2: bad input, 3: diverged, 128+N: signal N)


def _err(msg, code=2):
    from .errors import printable   # messages quote names, paths and values from files: no terminal escapes
    print(f"error: {printable(msg)}", file=sys.stderr)
    return code


@contextlib.contextmanager
def signals_interrupt(signums=(signal.SIGTERM,)):
    """While the command runs, SIGTERM stops it like Ctrl-C: the handler raises
    :class:`~microcircuit.errors.Terminated` (a KeyboardInterrupt), so the run closes its store as
    ``interrupted (SIGTERM) at step ...``, resumable, instead of dying with the store left "running".

    Installed by :func:`main` only, around one command, and the previous handlers are restored after
    it (importing microcircuit never touches signal handlers). A second SIGTERM while the first is
    being handled kills the process at once (the default action). Outside the main thread Python
    cannot install handlers, so nothing is changed there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signum, signal.SIG_DFL)
        raise Terminated(signum)

    old = {s: signal.signal(s, stop) for s in signums}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _resume_hint(store):
    return (f"; continue it with `microcircuit run --resume {store}`"
            if (Path(store) / "checkpoint").is_dir() else "")


def _interrupted(store, exc, at=""):
    """Ctrl-C or SIGTERM during a run (the run closed the store as interrupted): one line, exit 128+N."""
    from .errors import printable   # the store path comes from the command line: no terminal escapes
    name = getattr(exc, "signal_name", "Ctrl-C")
    print("\n" + printable(f"interrupted ({name}){at}; the recording in {store} is readable and marked "
                           f"interrupted{_resume_hint(store)}"), file=sys.stderr)
    return 128 + getattr(exc, "signum", signal.SIGINT)


def _os_error_text(exc):
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return f"{exc.strerror or exc}{where}"


def _write_failed(store, exc):
    """An I/O error stopped the run (full or read-only disk): one line saying what the store now says."""
    try:
        status = json.loads((Path(store) / "zarr.json").read_text())["attributes"].get("status")
    except (OSError, ValueError, KeyError):
        status = None
    if status == "failed":
        state = "the records committed before it are readable and the store is marked failed"
    elif status is None:
        state = "no readable store was left"
    else:
        state = f"its status could not be updated too (it still reads {status!r}); the committed records are readable"
    return _err(f"{store}: the run stopped writing: {_os_error_text(exc)}; {state}{_resume_hint(store)}", EXIT_IO)


def add_limit_flags(parser):
    """``--max-memory`` / ``--max-steps``: the limits of :mod:`microcircuit.limits` for this command."""
    parser.add_argument("--max-memory", metavar="BYTES", default=None,
                        help="refuse scenarios whose estimated memory is above this (e.g. 16G; default half "
                             "of physical RAM, or MICROCIRCUIT_MAX_MEMORY)")
    parser.add_argument("--max-steps", metavar="N", default=None,
                        help="refuse runs of more steps than this (default 1e9, or MICROCIRCUIT_MAX_STEPS)")


def apply_limit_flags(args):
    """Put the limit flags into the environment, so that this process and any worker it starts (a
    sweep's Dask workers) check the same limits."""
    import os
    from .limits import parse_size, LimitError
    for flag, var in (("max_memory", "MICROCIRCUIT_MAX_MEMORY"), ("max_steps", "MICROCIRCUIT_MAX_STEPS")):
        val = getattr(args, flag, None)
        if val is not None:
            try:
                os.environ[var] = str(parse_size(val, "--" + flag.replace("_", "-")))
            except ValueError as exc:
                raise LimitError(str(exc)) from None


def cmd_validate(args):
    """Load the scenario (with any ``--set`` overrides) and check it against the schema and the limits
    without simulating; print its circuit, the microcircuit conductances where there are any, the
    step count and the memory estimate, and the warnings. Exit 2 with the file and field on an error."""
    from .errors import printable
    from .limits import estimate_memory, fmt_bytes, current, step_count
    from .scenario import load_scenario
    apply_limit_flags(args)
    sc = load_scenario(args.scenario, args.set)
    c = sc.circuit()
    sim = sc.data["simulation"]
    # everything echoed from the file (names, paths, values) goes through printable(): no terminal escapes
    out = [f"{args.scenario}: OK"]
    if sc.data.get("scenario", {}).get("name"):
        out.append(f"scenario: {sc.data['scenario']['name']}")
    out.append(c.describe())
    if any(p.model in ("pyramidal", "output_pyramidal", "interneuron") for p in c.populations):
        from .microcircuit import conductance_table
        out.append("Microcircuit conductances (1/ms; from preset, explicit values or morphology):")
        out.append(conductance_table(c))
    dur = sim.get("duration")
    if dur:
        out.append(f"dt = {sim['dt']} ms, duration = {dur} ms ({int(round(step_count(sim['dt'], dur)))} steps), "
                   f"scheme = {sim.get('scheme', 'synchronous')}, batch = {sim.get('batch', 1)}")
    total, parts = estimate_memory(sc.data, sc.base_dir)
    out.append(f"memory estimate: {fmt_bytes(total)} ("
               + ", ".join(f"{k} {fmt_bytes(b)}" for k, (b, _) in parts.items() if b)
               + f"); limit {fmt_bytes(current().max_memory_bytes)}")
    for path, msg in sc.warnings:
        out.append(f"warning: {path}: {msg}")
    print(printable("\n".join(out)))
    return 0


def cmd_resume(args, store=None):
    """Continue the run in ``store`` (``--resume STORE``) from its last checkpoint: a plain run to
    ``simulation.duration``, a ``[protocol]`` run to its last epoch (then its summary is printed)."""
    from .checkpoint import resume
    from .recording import read_checkpoint
    store = store if store is not None else args.resume
    _, attrs = read_checkpoint(store)
    where = (f"epoch {attrs['protocol']['epoch']}" if isinstance(attrs.get("protocol"), dict)
             else f"step {attrs['step']}")
    print(f"resuming {store} from {where}", file=sys.stderr)
    try:
        res = resume(store, progress=not args.no_progress,
                     allow_changed_inputs=getattr(args, "allow_changed_inputs", False))
    except KeyboardInterrupt as exc:
        return _interrupted(store, exc)
    except DivergenceError as exc:
        return _err(f"{store}: {exc}", 3)
    except OSError as exc:
        return _write_failed(store, exc)
    if hasattr(res, "summary"):      # a protocol run: its TrainResult
        print(res.summary())
        print(f"recording: {store}")
        return 0
    print(f"simulated {res.step} steps ({res.time:g} ms); recording: {store}")
    return 0


def _resume_given_scenario(args):
    """``run X.toml [--out STORE] --resume``: resume the store this command would write (``--out``, else
    ``output.path``, else ``<scenario>.zarr``). The store's own scenario text runs; X.toml (with its
    ``--set`` overrides) must be the scenario the store was written from, otherwise the resume is
    refused like one whose scenario file was edited, unless ``--allow-changed-inputs``."""
    from .checkpoint import InputsChangedError, scenario_sha256
    from .recording import _open_root
    from .scenario import load_scenario
    sc = load_scenario(args.scenario, args.set)
    store = args.out or sc.data.get("output", {}).get("path") or f"{Path(args.scenario).stem}.zarr"
    if not Path(store).exists():
        return _err(f"{store}: no such store to resume; run {args.scenario} without --resume to start it")
    a = dict(_open_root(Path(store)).attrs)
    given = scenario_sha256(sc.text, [f"{k}={v}" for k, v in sc.overrides])
    if given != scenario_sha256(a.get("scenario", ""), a.get("overrides", [])) \
            and not getattr(args, "allow_changed_inputs", False):
        raise InputsChangedError(store, [f"{args.scenario} (with its --set overrides) is not the scenario the store "
                                         "was written from; a resume runs the stored scenario"])
    return cmd_resume(args, store)


def cmd_run(args):
    """Run a scenario into a Zarr store: a ``[protocol]`` scenario trains and evaluates as it
    describes and prints its summary; otherwise the circuit is simulated for
    ``simulation.duration`` and the ``[analysis]`` report, if any, is printed. With ``--resume STORE``
    an interrupted run continues from its last checkpoint. Exit 2 on bad input, 3 when a plain
    run diverges, 4 on an I/O error, 128+N when stopped by signal N."""
    from .scenario import load_scenario
    if args.resume is _RESUME_OUT:
        if args.scenario is None:
            return _err("--resume needs a STORE (run --resume STORE) or a scenario file (run X.toml --out STORE --resume)")
        return _resume_given_scenario(args)
    if args.resume:
        if args.scenario is not None:
            return _err("--resume STORE takes the scenario from the store; give no scenario file "
                        "(or run X.toml --out STORE --resume)")
        return cmd_resume(args)
    if args.scenario is None:
        return _err("run needs a scenario file (or --resume STORE)")
    apply_limit_flags(args)
    sc = load_scenario(args.scenario, args.set)
    out = args.out or sc.data.get("output", {}).get("path") or f"{Path(args.scenario).stem}.zarr"
    # --overwrite, or the scenario's [output] overwrite = true
    overwrite = bool(args.overwrite or sc.data.get("output", {}).get("overwrite", False))
    if "protocol" in sc.data:
        from .protocols import run_protocol
        try:
            result = run_protocol(sc, output=out, overwrite=overwrite, progress=not args.no_progress)
        except KeyboardInterrupt as exc:
            return _interrupted(out, exc)
        except OSError as exc:
            return _write_failed(out, exc)
        print(result.summary())
        print(f"recording: {out}")
        return 0
    dur = sc.data["simulation"].get("duration")
    if dur is None:
        return _err(f"{args.scenario}: simulation.duration: needed to run; add it or use --set simulation.duration=...")
    sim = sc.build(output=out, overwrite=overwrite, progress=not args.no_progress)
    from .checkpoint import checkpoint_steps
    sim.checkpoint_every = checkpoint_steps(sc)
    try:
        sim.run(dur)
        sim.close()
    except KeyboardInterrupt as exc:
        return _interrupted(out, exc, f" at t = {sim.time:g} ms")
    except DivergenceError as exc:
        return _err(f"{args.scenario}: {exc} Recording so far: {out}", 3)
    except OSError as exc:
        return _write_failed(out, exc)
    print(f"simulated {sim.step} steps ({sim.time:g} ms); recording: {out}")
    if "analysis" in sc.data:
        from .scenario.report import scenario_report
        print(scenario_report(sc, out))
    return 0


def cmd_info(args):
    """Describe a store; with --verify also read every chunk and exit 1 if anything is damaged or missing."""
    import warnings
    from .recording import IncompleteStoreWarning, describe_store, verify_store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteStoreWarning)  # describe_store lists them as WARNING lines
        print(describe_store(args.store))
        if not getattr(args, "verify", False):
            return 0
        problems = verify_store(args.store)
    bad = [x for x in problems if x.kind != "no_checksum"]
    for x in problems:
        if x.kind in ("damaged_chunk", "unreadable_chunk"):   # missing parts are listed above
            print(f"  DAMAGED: {x}")
    unchecked = [x.path for x in problems if x.kind == "no_checksum"]
    if unchecked:   # a store written before chunks carried checksums: one line, not one per array
        print(f"  NOTE: {len(unchecked)} array(s) have no checksums (written by an older microcircuit), so damage "
              f"to them shows only if a chunk cannot be decoded: {', '.join(unchecked[:5])}"
              f"{', ...' if len(unchecked) > 5 else ''}")
    print(f"verify: {len(bad)} problem(s)" if bad else "verify: OK, every chunk read back and matched its checksum")
    return 1 if bad else 0


def cmd_models(args):
    """The neuron models, or one model's parameters and variables (from the model registry)."""
    from .docgen import models_text
    print(models_text(args.name))
    return 0


def cmd_schema(args):
    """The scenario tables, or one table's keys (from the scenario schema)."""
    from .docgen import schema_text
    print(schema_text(args.table))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``microcircuit`` argument parser with every subcommand (``sweep`` when its extra is
    installed). :func:`main` parses with it; :func:`microcircuit.docgen.cli_markdown` walks it to
    write the command-line reference."""
    ap = argparse.ArgumentParser(prog="microcircuit", description="Simulate cortical microcircuits that learn.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario file")
    r.add_argument("scenario", nargs="?")
    r.add_argument("--resume", metavar="STORE", nargs="?", const=_RESUME_OUT, default=None,
                   help="continue an interrupted run from the last checkpoint in STORE (see output.checkpoint_every; "
                        "protocol runs: protocol.checkpoint_every); with a scenario file and no STORE, resume the "
                        "store the run writes (--out)")
    r.add_argument("--out", help="Zarr store to write (default: output.path or <scenario>.zarr)")
    r.add_argument("--set", action="append", default=[], metavar="dotted.key=value",
                   help="override a scenario field, e.g. --set simulation.dt=0.05")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output store")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_limit_flags(r)
    r.add_argument("--allow-changed-inputs", action="store_true",
                   help="with --resume: continue even though the scenario file or an input file (stimulus, weights, "
                        "morphology) changed since the run started (the result then differs from an uninterrupted run)")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="check a scenario file and describe its circuit")
    v.add_argument("scenario")
    v.add_argument("--set", action="append", default=[], metavar="dotted.key=value")
    add_limit_flags(v)
    v.set_defaults(func=cmd_validate)
    i = sub.add_parser("info", help="describe what a recording store holds")
    i.add_argument("store")
    i.add_argument("--verify", action="store_true",
                   help="read every chunk and check its checksum (a full read of the store); exit 1 on damage")
    i.set_defaults(func=cmd_info)
    mo = sub.add_parser("models", help="list the neuron models, or show one model's parameters (unit, default, "
                                       "allowed values), recordable variables and equations")
    mo.add_argument("name", nargs="?", metavar="NAME", help="a model, e.g. pyramidal")
    mo.set_defaults(func=cmd_models)
    sc = sub.add_parser("schema", help="list the tables of a scenario file, or show one table's keys (type, "
                                       "default, unit, allowed values)")
    sc.add_argument("table", nargs="?", metavar="TABLE", help="a table, e.g. simulation or plasticity")
    sc.set_defaults(func=cmd_schema)
    _extra_commands(sub)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        with signals_interrupt():
            return args.func(args)
    except MicrocircuitError as exc:
        return _err(str(exc))
    except (FileNotFoundError, FileExistsError, PermissionError) as exc:
        return _err(str(exc))
    except BrokenPipeError:   # `microcircuit models | head`: the reader left; say nothing, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit flush
        return 128 + signal.SIGPIPE
    except OSError as exc:    # a full or read-only disk outside a run (e.g. creating the store)
        return _err(_os_error_text(exc), EXIT_IO)
    except KeyboardInterrupt as exc:  # outside a run: nothing to close
        print(f"\ninterrupted ({getattr(exc, 'signal_name', 'Ctrl-C')})", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except Exception as exc:  # recording errors and similar typed errors from submodules
        from .recording import RecordingError
        if isinstance(exc, RecordingError):
            return _err(str(exc))
        raise


def _extra_commands(sub):
    try:
        from .sweep import add_sweep_command
    except ImportError:
        return None
    return add_sweep_command(sub)


if __name__ == "__main__":
    sys.exit(main())
