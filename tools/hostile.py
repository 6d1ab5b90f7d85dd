#!/usr/bin/env python3
"""Hostile-input corpus generator and runner for cnndsl (issue 14). Run it with the repository's venv
(it builds the files with numpy and onnx): .venv/bin/python tools/hostile.py ...

    python tools/hostile.py                          # all families for 3 minutes
    python tools/hostile.py --minutes 60             # the long run
    python tools/hostile.py --family weights --cases 80 --seed 7
    python tools/hostile.py --list --family models   # the cases, without running them
    python tools/hostile.py --only 'st-dtype-list' --keep /tmp/repro   # one case, its files kept
    python tools/hostile.py --rev HEAD               # the committed code, not the working tree

It generates hostile cases in six families (tools/hostile_cases.py), seeded and reproducible:

- specs: mutations of the shipped specs (byte flips, truncation, huge numbers, deep nesting, control
  characters and escape sequences in titles, BOM, CR/CRLF, NUL, long lines, huge repeats, wide
  concats, block chains) and special files (/dev/zero, a FIFO, a folder, a sparse 3 GB file, latin-1,
  UTF-16), through check, params, summary, fmt --check, graph -o x.dot and (small specs) compile;
- weights: hostile safetensors, npz (a zip bomb, nested, non-literal headers, 2e10 elements, object
  arrays, odd zip methods), .onnx weights (external data outside the folder, /dev/zero, a sparse
  6 GiB file, truncated protobuf) and pickles, given to `compile specs/lenet5.cnn --weights FILE`;
- inputs: .npy/.npz/.txt files for `run SPEC|MODEL --input` and `compile --quantize int8 --calibration`;
- models: ONNX models for `run` and `bench` (no inputs, a scalar input, no rank, 1x3x100000x100000,
  a Loop of 10^15 trips, with and without SIGINT, 4 GiB ConstantOfShape), and `--batch 1000000000`;
- env: TMPDIR missing/unwritable, HOME unset, NO_COLOR and TERM=dumb on a terminal, read-only
  output folders, stdout on /dev/full, a closed pipe or a closed descriptor, an output that is an
  input, hostile CNNDSL_* limits, `ulimit -f`;
- signals: SIGTERM, SIGINT and SIGHUP at a random moment of `compile specs/vgg16.cnn` (and export,
  int8), and a SIGKILLed compile followed by a run into the same folder.

Each case runs `python -m cnndsl ...` (the repository's .venv) in a fresh folder with its own TMPDIR
and HOME, under a per-case timeout (--timeout, shorter for cases expected to block), RLIMIT_FSIZE
(1 GiB; 256 MiB for compiling mutated specs) and a memory cap (--mem-cap: VmHWM is polled and the
child killed above it); its peak RSS comes from os.wait4, in a small reaper process (see REAPER). The
legitimate baseline of each command family (e.g. compile lenet5 and resnet18 with valid weights; run
lenet5.onnx on a valid input; check a spec at the layer and size limits) runs once, before its
family's first case. Findings, by kind:

  traceback        "Traceback (most recent call last)" in stdout or stderr
  unraisable       "Exception ignored ..." on stderr;  aborted: a bare "Aborted!"
  exit-code        a status other than 0, 1, 2 (the signal family also allows 129, 130, 143)
  hang             still running at the timeout;  signal-ignored: running a few s after a signal
  memory           peak RSS above 2x the family's baseline;  memory-cap: killed at the cap
  leftover         anything in the work folder but the inputs and, after exit 0, the expected
                   outputs: staging files, stray files
  output-after-error  an expected output present after a non-zero exit; not when the standard
                   output was full, a closed pipe or closed and the file is whole (the status line
                   that follows a published file failed: the README's promise)
  tmpdir-leftover  anything left in the case's TMPDIR (onnxruntime writes .ses there)
  modified-input   an input file changed or removed
  missing-output   exit 0 without the output;  incomplete-output: not the baseline's size
  accepted         exit 0 for a file that breaks its format's rules (overlapping offsets, ...)
  control-chars    raw control characters (ESC, BEL, C1, bidi, lone CR) in the output; on a
                   terminal (click strips CSI sequences only when not on one), all but colour
  colour           escape sequences on a terminal despite NO_COLOR or TERM=dumb
  stderr-flood     more than 256 KB on stderr (an error message echoing its input)
  code-execution   a PWNED file: a pickle in a hostile file ran
  tool             the tool could not build the case (a bug here, not in cnndsl)

It prints one line per finding (family, case, what, the command, the exit status, the last line of
stderr), then a summary (cases per family, wall time, findings by kind with a rerun command each,
baselines, the worst memory ratio); the exit status is 1 if anything was found. Nothing touches the
network; large files are sparse (truncate) or compressed; every case folder is removed unless
--keep DIR, which keeps the cases with findings, each with a repro.sh.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import pty
import random
import re
import resource
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.set_int_max_str_digits(0)  # the cases write 5000-digit numbers

import hostile_cases as hc  # noqa: E402

ROOT = hc.ROOT
TRACEBACK = "Traceback (most recent call last)"
UNRAISABLE = "Exception ignored"
LIMIT_READ = 16 * hc.MiB  # of a captured stream, scanned for tracebacks
PEAK_RATIO = 2.0
KIND_NAMES = {"file": "regular file", "big": "regular file", "link": "symlink", "dir": "folder"}
SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour: the escape sequence cnndsl itself writes on a terminal
FLOOD = 256 * 1024  # bytes of stderr: more is an error message that echoes its input


@dataclass
class Result:
    """What one run of a case did."""

    code: int | None = None
    peak: int = 0  # bytes, ru_maxrss
    seconds: float = 0.0
    hung: bool = False
    capped: bool = False
    ignored_signal: bool = False
    stdout: str = ""
    stderr: str = ""
    stderr_bytes: int = 0
    findings: list[tuple[str, str]] = field(default_factory=list)  # (kind, what)


def default_python() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "python"
    exe = str(venv) if venv.exists() else sys.executable
    return [exe, "-P"] if sys.version_info >= (3, 11) else [exe]


def clean(text: str, limit: int = 200) -> str:
    """Untrusted text made safe to print: control characters escaped, length bounded."""
    out = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit] + "..."


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- running one command ----------------------------------------------------------------------


def _rss_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _read(path: Path) -> str:
    """A captured stream: its head and its tail if it is long."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(LIMIT_READ)
            if size > LIMIT_READ:
                fh.seek(size - hc.MiB)
                data += b"\n...\n" + fh.read()
    except OSError:
        return ""
    return data.decode("utf-8", "backslashreplace")


# The command is started by a small reaper, not by this process: after fork, a child's ru_maxrss
# starts from its parent's RSS (the kernel folds the old address space's peak in at exec), so a
# command forked from this tool, which holds the cases' arrays, would report the tool's size. The
# reaper (a bare interpreter, ~10 MB) forks the command, reports its pid, ignores the signals meant
# for it, and reports its wait4 status and ru_maxrss.
REAPER = """
import os, signal, sys
out = int(sys.argv[1])
stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # held until the child can take them as a new process
pid = os.fork()
if pid == 0:
    os.close(out)
    for s in (signal.SIGPIPE, signal.SIGXFSZ, *stops):
        signal.signal(s, signal.SIG_DFL)  # as a shell would start it (not Python's handler: lost by exec)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
for s in stops:
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
os.write(out, b"%d\\n" % pid)
_, status, usage = os.wait4(pid, 0)
os.write(out, b"%d %d\\n" % (status, usage.ru_maxrss))
"""


def run_child(argv: list[str], cwd: Path, env: dict, case: hc.Case, logs: Path, timeout: float,
              mem_cap: int) -> Result:
    """Run ``argv`` as the case says (stdout, signals, limits) through the reaper; poll its memory;
    return its exit status and peak RSS (wait4's ru_maxrss, or the last VmHWM if it was killed)."""
    res = Result()
    out_path, err_path = logs / "stdout", logs / "stderr"
    master = read_end = None
    close_fds: list[int] = []
    stderr = open(err_path, "wb")  # noqa: SIM115 - closed below
    if case.stdout == "tty":
        master, slave = pty.openpty()
        stdout = stderr_fd = slave
        close_fds.append(slave)
    else:
        stderr_fd = stderr.fileno()
        if case.stdout == "full":
            stdout = os.open("/dev/full", os.O_WRONLY)
            close_fds.append(stdout)
        elif case.stdout == "pipe":
            read_end, stdout = os.pipe()
            close_fds.append(stdout)
        else:
            stdout = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            close_fds.append(stdout)
    report_r, report_w = os.pipe()
    close_fds.append(report_w)

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if case.stdout == "closed":
            os.close(1)

    start = time.monotonic()
    try:
        reaper = subprocess.Popen([argv[0], "-I", "-S", "-c", REAPER, str(report_w), *argv], cwd=cwd, env=env,
                                  stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr_fd, start_new_session=True,
                                  preexec_fn=limits, close_fds=True, pass_fds=(report_w,))
    finally:
        for fd in close_fds:
            os.close(fd)
        stderr.close()
    if read_end is not None:
        os.close(read_end)  # nobody reads: the first write gets EPIPE
    tty, report = bytearray(), bytearray()
    pending = sorted(case.signals)
    last_signal = born = None
    hwm = 0
    try:
        while not os.waitid(os.P_PID, reaper.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):  # exited, not reaped
            _drain(master, tty)
            _drain(report_r, report)
            child = int(report.split(b"\n")[0]) if b"\n" in report else None
            if child is None:  # the reaper has not forked yet
                time.sleep(0.005)
                continue
            now = time.monotonic() - start
            if born is None:
                born = now  # signals are timed from here: a slow start must not shift them before exec
            while pending and pending[0][0] <= now - born:
                _, sig, group = pending.pop(0)
                _send(reaper.pid if group else child, sig, group)  # the group's id is the reaper's pid
                last_signal = now
            hwm = max(hwm, _rss_hwm(child))
            if hwm > mem_cap:
                res.capped = True
                _send(child, signal.SIGKILL, False)
            elif last_signal is not None and not pending and now > last_signal + case.grace:
                res.ignored_signal = True
                _abort(child)
            elif now > timeout:
                res.hung = True
                _abort(child)
            time.sleep(0.02)
    finally:  # also when the tool itself is interrupted: the case must not outlive it
        _send(reaper.pid, signal.SIGKILL, True)  # and what it started (the group lives while the reaper is unreaped)
        reaper.wait()
        _drain(report_r, report)
        os.close(report_r)
    _drain(master, tty)
    lines = report.split()
    if len(lines) == 3:  # the child's pid, its wait status and ru_maxrss (KiB)
        res.code, res.peak = os.waitstatus_to_exitcode(int(lines[1])), int(lines[2]) * 1024
    else:  # the reaper itself died (killed with the group): the command was killed too
        res.code, res.peak = -signal.SIGKILL, hwm
    res.seconds = time.monotonic() - start
    if master is not None:
        os.close(master)
        res.stdout = res.stderr = tty.decode("utf-8", "backslashreplace")
    else:
        res.stdout = _read(out_path) if case.stdout == "file" else ""
        res.stderr = _read(err_path)
        res.stderr_bytes = err_path.stat().st_size
    return res


def _drain(master: int | None, into: bytearray) -> None:
    """Read what is waiting on a pty or pipe (the child blocks when it is full); keep the first MiB."""
    while master is not None and select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            return
        if not chunk:
            return
        if len(into) < hc.MiB:
            into += chunk


def _abort(pid: int) -> None:
    """Kill a command that outlived its time: SIGABRT first, so that faulthandler (PYTHONFAULTHANDLER,
    set for every case) writes where each thread was to its stderr, then SIGKILL."""
    _send(pid, signal.SIGABRT, False)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)
    _send(pid, signal.SIGKILL, False)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _send(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- the folder before and after --------------------------------------------------------------


def fingerprint(path: Path) -> tuple:
    st = path.lstat()
    if path.is_symlink():
        return ("link", os.readlink(path))
    if not path.is_file():
        kinds = [(stat.S_ISDIR, "dir"), (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "char device"),
                 (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")]
        return (next((name for test, name in kinds if test(st.st_mode)), "special"), st.st_mode)
    if st.st_size > 64 * hc.MiB:  # sparse and big: size, time and the ends
        with open(path, "rb") as fh:
            head = fh.read(hc.MiB)
            fh.seek(st.st_size - hc.MiB)
            return ("big", st.st_size, st.st_mtime_ns, hashlib.sha256(head + fh.read()).hexdigest())
    return ("file", st.st_size, hashlib.sha256(path.read_bytes()).hexdigest())


def snapshot(folder: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(folder))] = fingerprint(path)
    return out


def _chattr(path: Path, on: bool) -> None:
    """Make a folder immutable even for root (chattr +i), or read-only where chattr cannot."""
    flag = "+i" if on else "-i"
    if subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode:
        path.chmod(0o555 if on else 0o755)


# -- one case ---------------------------------------------------------------------------------


class Session:
    """Baselines, artefacts and counters of one run of the tool."""

    def __init__(self, args) -> None:
        self.args = args
        self.python = shlex.split(args.python) if args.python else default_python()
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="cnndsl-hostile-", dir=args.keep)).resolve()
        self.art = hc.Artefacts(self.root / "_shared", self.python, args.seed)
        self.peaks: dict[str, int] = {}
        self.sizes: dict[str, dict[str, int]] = {}
        self.baseline_cases = hc.baselines(self.art)
        self.counter = 0
        self.worst = (0.0, "")  # the highest peak / baseline ratio, and its case
        self.highest = (0, "")  # the highest peak of any hostile case
        self.broken: list[str] = []  # legitimate runs that failed: their memory bounds are missing

    def env(self, case: hc.Case, folder: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNNDSL_")}
        env.update(TMPDIR=str(folder / "tmp"), HOME=str(folder / "home"), PYTHONDONTWRITEBYTECODE="1",
                   PYTHONFAULTHANDLER="1", MPLCONFIGDIR=str(self.root / "_shared" / "mpl"))
        env.pop("NO_COLOR", None)
        for key, value in case.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value.replace("{root}", str(folder))
        return env

    def baseline(self, key: str) -> int | None:
        """The peak memory of the legitimate runs of ``key`` (run once, the first time it is needed)."""
        if key not in self.peaks:
            peaks = []
            for case in self.baseline_cases[key]:
                res, sizes = self.execute(case, baseline=True)
                if res.findings or res.code not in case.codes or res.hung or res.capped:
                    self.broken.append(f"{key}/{case.name}: exit {res.code}: {clean(last_line(res.stderr))}")
                    print(f"BASELINE FAILED {self.broken[-1]}", flush=True)
                    continue
                peaks.append(res.peak)
                self.sizes[key] = sizes
            self.peaks[key] = max(peaks, default=0)
            print(f"baseline {key}: {self.peaks[key] / hc.MiB:.0f} MiB peak", flush=True)
        return self.peaks[key] or None

    def execute(self, case: hc.Case, baseline: bool = False) -> tuple[Result, dict[str, int]]:
        if not baseline:
            for key in (case.baseline, case.complete):
                if key:
                    self.baseline(key)
        self.counter += 1
        folder = self.root / f"{self.counter:05d}-{case.family}"
        work, tmp = folder / "work", folder / "tmp"
        for d in (work, tmp, folder / "home"):
            d.mkdir(parents=True)
        rng = random.Random(f"{self.args.seed}/{case.name}")
        try:
            if case.build:
                case.build(work, rng)
        except Exception as exc:  # noqa: BLE001 - a case the tool could not make is reported, not fatal
            shutil.rmtree(folder, ignore_errors=True)
            return Result(findings=[("tool", f"could not build the case: {type(exc).__name__}: {exc}")]), {}
        before = snapshot(work)
        env = self.env(case, folder)
        argv = [*self.python, "-m", "cnndsl", *case.args]
        for pre_args, kill_after in case.pre:
            # SIGKILL to the command alone: its reaper reaps it at once, as a shell would (killing both at
            # once leaves a zombie until init reaps it, and a zombie's pid counts as alive)
            pre = hc.Case(case.family, "pre", pre_args, signals=((kill_after, signal.SIGKILL, False),), grace=30)
            run_child([*self.python, "-m", "cnndsl", *pre_args], work, env, pre, folder, 120, self.args.mem_cap)
        locked = [folder / p for p in case.locked]
        for path in locked:
            _chattr(path, True)
        try:
            timeout = min(self.args.timeout, case.timeout or self.args.timeout)
            res = run_child(argv, work, env, case, folder, timeout, self.args.mem_cap)
        finally:
            for path in locked:
                _chattr(path, False)
        after = snapshot(work)
        sizes = {k: v[1] for k, v in after.items() if k not in before and v[0] in ("file", "big")}
        if not baseline:
            self.check(case, res, before, after, folder)
        if self.args.keep and not baseline and (res.findings or self.args.only):
            self.write_repro(case, folder, env)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        return res, sizes

    def check(self, case: hc.Case, res: Result, before: dict, after: dict, folder: Path) -> None:
        found = res.findings
        both = res.stdout + "\n" + res.stderr
        signalled = bool(case.signals)
        if TRACEBACK in both:
            i = both.rfind(TRACEBACK)
            found.append(("traceback", clean(last_line(both[i:]))))
        if UNRAISABLE in res.stderr:
            found.append(("unraisable", clean(res.stderr[res.stderr.find(UNRAISABLE):].splitlines()[0])))
        if last_line(res.stderr).strip() == "Aborted!" and not signalled:
            found.append(("aborted", "stderr ends in a bare 'Aborted!'"))
        if res.stderr_bytes > FLOOD:
            found.append(("stderr-flood", f"{res.stderr_bytes:,} bytes on stderr"))
        if res.hung:
            found.append(("hang", f"still running after {res.seconds:.0f} s: killed"))
        elif res.capped:
            found.append(("memory-cap", f"killed at the memory cap ({self.args.mem_cap / hc.GiB:.1f} GiB)"))
        elif res.ignored_signal:
            found.append(("signal-ignored", f"still running {case.grace:.0f} s after the signal: killed"))
        elif res.code == 0 and case.refuse:
            found.append(("accepted", "exit 0: an input that breaks its format's rules was accepted silently"))
        elif res.code not in case.codes:
            what = (f"killed by {signal.Signals(-res.code).name}" if res.code < 0 else f"exit status {res.code}")
            found.append(("exit-code", what))
        if (folder / "work" / "PWNED").exists() or (folder / "PWNED").exists():
            found.append(("code-execution", "a pickle ran: PWNED was created"))
        ok = res.code == 0 and not (res.hung or res.capped or res.ignored_signal)
        left = []
        for path, fp in after.items():
            if path in before:
                if before[path] != fp and not (ok and _allowed(path, case.outputs)):  # fmt rewrites its input
                    was, now = (KIND_NAMES.get(k, k) for k in (before[path][0], fp[0]))
                    found.append(("modified-input", f"{path} changed" if was == now else
                                  f"{path}: the {was} was replaced by a {now}"))
            elif not (ok and _allowed(path, case.outputs)):
                left.append(path)
        for path in left:  # the top of each left tree only: a staging folder is one finding
            if any(path.startswith(p + "/") for p in left):
                continue
            shown = f"{path}{'/' if after[path][0] == 'dir' else ''}"
            if not ok and _allowed(path, case.outputs):  # written whole, then the exit status disowned it
                if case.stdout in ("full", "pipe", "closed") and self.whole(case, path, after):
                    continue  # only the status line failed, after the file was in place (README: promises)
                found.append(("output-after-error", f"{shown} exists after exit {res.code}"))
            else:
                found.append(("leftover", f"{shown} {'after a success' if ok else f'after exit {res.code}'}"))
        for path in before:
            if path not in after:
                found.append(("modified-input", f"{path} was removed"))
        if ok:
            for path in case.required:
                if path not in after:
                    found.append(("missing-output", f"exit 0 but no {path}"))
            if case.complete and self.sizes.get(case.complete):
                for path, size in self.sizes[case.complete].items():
                    if path in after and after[path][1] != size:
                        found.append(("incomplete-output", f"{path} is {after[path][1]} bytes, not {size}"))
        tmp_left = [p for p in snapshot(folder / "tmp")] if (folder / "tmp").is_dir() else []
        if tmp_left and "TMPDIR" not in case.env:  # its own kind: onnxruntime leaves .ses in every TMPDIR
            found.append(("tmpdir-leftover", f"left in TMPDIR: {', '.join(sorted(tmp_left)[:3])}"))
        streams = [res.stderr] + ([] if case.text_stdout or case.stdout == "tty" else [res.stdout])
        if case.stdout == "tty":  # the terminal's own output: colour (SGR) is cnndsl's, the rest is not
            if "\x1b[" in res.stderr and any(k in case.env for k in ("NO_COLOR", "TERM")):
                found.append(("colour", f"escape sequences on the terminal despite {next(iter(case.env))}"))
            streams = [SGR.sub("", res.stderr)]
        bad = sorted({c for s in streams for c in s if _control(c)} | ({"\\r"} if any(
            _lone_cr(s) for s in streams) else set()))
        if bad:
            where = "on the terminal" if case.stdout == "tty" else "in the output"
            found.append(("control-chars", "raw " + " ".join(repr(c)[1:-1] for c in bad[:6]) + f" {where}"))
        if res.peak > self.highest[0]:
            self.highest = (res.peak, f"{case.family}/{case.name}")
        if case.baseline:
            peak = self.baseline(case.baseline)
            if peak:
                ratio = res.peak / peak
                if ratio > self.worst[0]:
                    self.worst = (ratio, f"{case.family}/{case.name}")
                if ratio > PEAK_RATIO and not res.capped:
                    found.append(("memory", f"peak {res.peak / hc.MiB:,.0f} MiB = {ratio:.1f}x the baseline "
                                            f"{case.baseline} ({peak / hc.MiB:,.0f} MiB)"))

    def whole(self, case: hc.Case, path: str, after: dict) -> bool:
        """Whether an output is the size a legitimate run gives it (True where none was measured)."""
        size = self.sizes.get(case.complete, {}).get(path) if case.complete else None
        return size is None or after[path][1] == size

    def write_repro(self, case: hc.Case, folder: Path, env: dict) -> None:
        changed = {k: v for k, v in env.items() if k == "PYTHONPATH" or os.environ.get(k) != v}
        changed.pop("PYTHONDONTWRITEBYTECODE", None)
        changed.pop("PYTHONFAULTHANDLER", None)
        unset = [k for k, v in case.env.items() if v is None]
        redirect = {"full": " > /dev/full", "pipe": " | true", "closed": " >&-"}.get(case.stdout, "")
        line = " ".join(["env", *(f"-u {k}" for k in unset), *(f"{k}={shlex.quote(v)}" for k, v in changed.items()),
                         *map(shlex.quote, self.python), "-m", "cnndsl", *map(shlex.quote, case.args)])
        (folder / "repro.sh").write_text(f"#!/bin/sh\n# {case.family}/{case.name}\ncd \"$(dirname \"$0\")/work\" && "
                                         f"{line}{redirect}\n")


def _allowed(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` is an expected output: a pattern's match, or in (or above) a ``DIR/**``."""
    for pat in patterns:
        if fnmatch.fnmatch(path, pat):
            return True
        if pat.endswith("/**") and (path == pat[:-3] or path.startswith(pat[:-2])):
            return True
    return False


def _control(c: str) -> bool:
    o = ord(c)
    return (o < 32 and c not in "\n\t\r") or 0x7F <= o < 0xA0 or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068"


def _lone_cr(s: str) -> bool:
    return "\r" in s.replace("\r\n", "")


def command_line(case: hc.Case) -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" if v is not None else f"-u {k}" for k, v in case.env.items())
    redirect = {"full": " > /dev/full", "pipe": " | (exit)", "closed": " >&-", "tty": " (on a terminal)"}.get(
        case.stdout, "")
    signals = "".join(f"; {signal.Signals(s).name} at {t:g}s" for t, s, _ in case.signals)
    args = " ".join(shlex.quote(a.removeprefix(str(ROOT) + "/")) for a in case.args)
    return clean(f"{'env ' + env + ' ' if env else ''}cnndsl {args}{redirect}{signals}", 160)


# -- the session ------------------------------------------------------------------------------


def streams(args, art: hc.Artefacts):
    families = args.family or list(hc.FAMILIES)
    return {f: hc.GENERATORS[f](art) for f in families}


def checkout(rev: str, folder: Path) -> str:
    """The package at ``rev``, laid out as installed (grammar/ is the package cnndsl.grammar)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "cnndsl", "grammar"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    if (folder / "grammar").is_dir() and not (folder / "cnndsl" / "grammar").exists():
        (folder / "grammar").rename(folder / "cnndsl" / "grammar")
    return str(folder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--seed", type=int, default=0, help="the seed of every generated case (default %(default)s)")
    ap.add_argument("--minutes", type=float, default=None, help="run for this long (default 3, unless --cases)")
    ap.add_argument("--cases", type=int, default=None, help="run this many cases")
    ap.add_argument("--family", action="append", choices=hc.FAMILIES, help="only these families (repeatable)")
    ap.add_argument("--only", help="only cases whose name matches this glob (searched among the first 5,000)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep each case with a finding, with repro.sh")
    ap.add_argument("--list", action="store_true", help="print the cases that would run, and run nothing")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default %(default)s)")
    ap.add_argument("--mem-cap", type=float, default=2.0, help="GiB: a case above it is killed (default %(default)s)")
    ap.add_argument("--rev", help="test cnndsl as committed at this git revision (git archive into the session "
                                  "folder, first on PYTHONPATH) instead of the working tree")
    ap.add_argument("--python", help="the command that runs cnndsl's module, e.g. 'python3 -P' (default: the "
                                     "repository's .venv/bin/python -P)")
    args = ap.parse_args(argv)
    args.mem_cap = int(args.mem_cap * hc.GiB)
    if args.minutes is None and args.cases is None:
        args.minutes = 3.0
    if args.list:  # generating a case makes no file: only running it does
        art = hc.Artefacts(Path(tempfile.mkdtemp(prefix="cnndsl-hostile-list-")), default_python(), args.seed)
        try:
            for family, gen in streams(args, art).items():
                for i, case in enumerate(gen):
                    if i >= (args.cases or 400):
                        break
                    if not args.only or fnmatch.fnmatch(case.name, args.only):
                        print(f"{family:8} {case.name:60} $ {command_line(case)}")
        finally:
            shutil.rmtree(art.folder, ignore_errors=True)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (unlock, remove) as for Ctrl-C
    session = Session(args)
    try:
        if args.rev:  # pinned: HEAD may move while the session runs, and its rerun lines must mean the same code
            args.rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", args.rev],
                                      capture_output=True, text=True, check=True).stdout.strip()
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout(args.rev, session.root / "_source"),
                                                                     os.environ.get("PYTHONPATH")]))
        print(f"cnndsl hostile inputs{' at ' + args.rev if args.rev else ''}: seed {args.seed}, "
              f"families {', '.join(args.family or hc.FAMILIES)}, "
              f"{f'{args.minutes:g} minutes' if args.minutes else f'{args.cases} cases'}, working in {session.root}",
              flush=True)
        return run(session, args)
    finally:
        if not args.keep:
            shutil.rmtree(session.root, ignore_errors=True)


def run(session: Session, args) -> int:
    gens = streams(args, session.art)
    if args.only:  # one case or a few, found by name among each family's first 5,000
        picked = {}
        for family, gen in gens.items():
            matches = [c for _, c in zip(range(5000), gen, strict=False) if fnmatch.fnmatch(c.name, args.only)]
            picked[family] = iter(matches)
        gens = picked
    start = time.monotonic()
    deadline = start + args.minutes * 60 if args.minutes else None
    spent: dict[str, float] = dict.fromkeys(gens, 0.0)
    ran: Counter = Counter()
    by_kind: dict[str, list] = defaultdict(list)
    while gens and (args.cases is None or sum(ran.values()) < args.cases):
        if deadline and time.monotonic() > deadline:
            break
        family = min(gens, key=lambda f: (spent[f], list(spent).index(f)))
        case = next(gens[family], None)
        if case is None:
            del gens[family]
            continue
        t0 = time.monotonic()
        res, _ = session.execute(case)
        spent[family] += time.monotonic() - t0
        ran[family] += 1
        for kind, what in res.findings:
            by_kind[kind].append((case, what, res))
            print(f"FINDING {family:8} {clean(case.name)}: {kind}: {clean(what)} | $ {command_line(case)} | "
                  f"exit {res.code} | "
                  f"stderr: {clean(last_line(res.stderr), 160)}", flush=True)
    wall = time.monotonic() - start
    print("\n== summary ==")
    print(f"cases run: {sum(ran.values())} in {wall:.0f} s wall (seed {args.seed}): "
          + ", ".join(f"{f} {n}" for f, n in ran.items()))
    findings = sum(len(v) for v in by_kind.values())
    cases_with = len({id(c) for v in by_kind.values() for c, _, _ in v})
    print(f"findings: {findings} in {cases_with} cases" + ("" if findings else " (none)"))
    for kind, items in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        case, what, _ = items[0]
        print(f"  {kind:18} {len(items):4}   e.g. {case.family}/{case.name}: {what}")
        print(f"  {'':18}        rerun: python tools/hostile.py --seed {args.seed} --family {case.family} "
              f"--only {shlex.quote(case.name)} --keep DIR{' --rev ' + args.rev if args.rev else ''}")
    print("baselines (peak MiB): " + ", ".join(f"{k} {v / hc.MiB:.0f}" for k, v in session.peaks.items()))
    for line in session.broken:
        print(f"baseline failed (no memory bound for its cases): {line}")
    ratio, where = session.worst
    print(f"worst memory ratio: {ratio:.2f}x the baseline of its family ({where})" if where else
          "worst memory ratio: n/a")
    if session.peaks and session.highest[1]:
        top = max(session.peaks.values())
        print(f"highest peak: {session.highest[0] / hc.MiB:,.0f} MiB ({session.highest[1]}) = "
              f"{session.highest[0] / max(top, 1):.1f}x the largest legitimate peak ({top / hc.MiB:,.0f} MiB)")
    return 1 if findings or session.broken else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`: the reader has what it wanted (cleaning up already ran)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
