#!/usr/bin/env python3
"""Runs every test suite against one build and prints one closing line.

Suites: the doctest unit tests (BUILD/unit_tests), the Python tests of the
scripts (tests/python/test_*.py) and the end-to-end tests that drive the
binary (tests/e2e/test_*.py). Each suite's own output is shown; the last line
is "N passed, N failed, N skipped" summed over all of them, and the exit
status is 1 when anything failed.

How tests are counted (each test exactly once):
  - a test method counts once: passed, failed (an assertion), errored (any
    other exception, in the test, its setUp or its tearDown) or skipped;
  - a method that uses self.subTest counts as its subtests, each one a test
    (passed, failed, errored or skipped), plus one more if its body outside
    the subtests failed, errored or skipped;
  - a class whose setUpClass raises SkipTest counts each of its tests as
    skipped; a setUpClass (or setUpModule) that raises anything else counts
    each of its tests as errored; an error in tearDownClass / tearDownModule
    counts as one more error;
  - an expected failure (@unittest.expectedFailure) that fails counts as
    passed; one that passes counts as failed;
  - a module that cannot be imported counts as one error;
  - the doctest binary: its own test-case counts, plus one failure when it
    exits non-zero with no failed test case (a sanitizer report at exit); test
    cases a crash kept from running (doctest calls them skipped) count as failed.
Errors are part of "failed" on the last line (the line before it splits them).

The Python test modules run side by side, one per core (--jobs N; each module in a
process of its own, its output printed whole when it ends, the slowest started first).

Every suite runs under a timeout (the unit-test binary as a whole, each Python
test module in a process of its own): a suite that hangs is killed, named, and
every test of it that had not reported counts as failed.

Environment given to the Python suites:
  MINIGPT_BIN       path of the minigpt binary under test
  MINIGPT_BUILD     the build folder
  MINIGPT_SANITIZED=1 when the build is the ASan/UBSan one (slow tests may shrink)
  MINIGPT_TEST_TMP  a scratch folder shared by the modules of this run (the e2e
                    helpers cache their tiny models there), removed at the end
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from unittest.case import _SubTest
from unittest.suite import _ErrorHolder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("passed", "failed", "errors", "skipped")
# Timeouts in seconds, there to turn a hang into a named failure, not to time anything.
# Measured on the shared 2-core machine (Debian 12, AMD EPYC VM) with a load average of ~17
# from other builds: unit tests 7 s, the slowest module (e2e/test_llama_interop.py) 687 s,
# every other module under 2 minutes. The sanitized build is several times slower, hence the factor.
# Modules that take longest, started first when modules run side by side (--jobs): seconds
# measured in one `make test` on the 2-core machine at load ~7; the others took under 40 s.
SLOW_MODULES = {"e2e/test_llama_interop.py": 60, "e2e/test_convert_interop.py": 40, "e2e/test_core.py": 46,
                "e2e/test_convert_sources.py": 44}
UNIT_TIMEOUT = 600
MODULE_TIMEOUT = 1800
SANITIZED_FACTOR = 3


def new_counts():
    return dict.fromkeys(KINDS, 0)


def add_counts(into, other):
    for k in KINDS:
        into[k] += other.get(k, 0)
    return into


def summary_line(c):
    """The closing line CI parsers read: errors are counted as failures."""
    return f"{c['passed']} passed, {c['failed'] + c['errors']} failed, {c['skipped']} skipped"


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def _class_key(test):
    cls = type(test)
    return f"{cls.__module__}.{cls.__qualname__}", cls.__module__


class CountingResult(unittest.TextTestResult):
    """A TextTestResult (same printed output) that counts each test once, as the
    module docstring says. `planned` are the tests the suite holds, so tests that
    never start (their class's or module's setup failed) are still counted."""
    RANK = {"passed": 0, "skipped": 1, "failed": 2, "errors": 3}

    def __init__(self, stream, descriptions, verbosity, planned=(), on_change=None):
        super().__init__(stream, descriptions, verbosity)
        self.planned = {t.id(): _class_key(t) for t in planned}
        self.counts = new_counts()
        self.reported = set()       # ids of planned tests already counted
        self.setup_failed = {}      # class or module name -> ("skipped" | "errors", description)
        self.problems = []          # ids (and descriptions) of what failed, for the summary
        self.on_change = on_change  # called after each test is counted
        self._own = self._subs = None

    # -- per test ------------------------------------------------------------
    def startTest(self, test):
        super().startTest(test)
        self._own, self._subs = None, []

    def _set_own(self, kind):
        if self._own is None or self.RANK[kind] > self.RANK[self._own]:
            self._own = kind

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set_own("passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set_own("failed")

    def addError(self, test, err):
        super().addError(test, err)
        if isinstance(test, _ErrorHolder):
            self._level_outcome(test.description, "errors")
        else:
            self._set_own("errors")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if isinstance(test, _SubTest):
            self._subs.append(("skipped", test.id()))
        elif isinstance(test, _ErrorHolder):
            self._level_outcome(test.description, "skipped", reason)
        else:
            self._set_own("skipped")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set_own("passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set_own("failed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None:
            kind = "passed"
        else:
            kind = "failed" if issubclass(err[0], test.failureException) else "errors"
        self._subs.append((kind, subtest.id()))

    def stopTest(self, test):
        super().stopTest(test)
        tid = test.id()
        if self._subs:
            outcomes = list(self._subs)
            if self._own in ("failed", "errors", "skipped"):
                outcomes.append((self._own, tid))
        else:
            # No outcome at all cannot happen with unittest's TestCase; count it as an error.
            outcomes = [(self._own or "errors", tid)]
        for kind, name in outcomes:
            self._count(kind, name)
        self.reported.add(tid)
        self._own = self._subs = None
        if self.on_change:
            self.on_change(self)

    def _count(self, kind, name, n=1):
        self.counts[kind] += n
        if kind in ("failed", "errors"):
            self.problems.append(f"{kind[:-1] if kind == 'errors' else 'failed'}: {name}")

    # -- class and module level ------------------------------------------------
    def _level_outcome(self, description, kind, reason=""):
        m = re.match(r"(\w+) \((.*)\)$", description)
        what, owner = (m.group(1), m.group(2)) if m else (description, "")
        if what in ("setUpClass", "setUpModule"):
            self.setup_failed.setdefault(owner, (kind, description + (f": {reason}" if reason else "")))
        elif kind == "errors":  # tearDownClass, tearDownModule, class or module cleanups
            self._count("errors", description)
            if self.on_change:
                self.on_change(self)

    def finish(self):
        """Counts the planned tests that never ran; returns the counts."""
        for tid, (cls, module) in self.planned.items():
            if tid in self.reported:
                continue
            kind, why = self.setup_failed.get(cls) or self.setup_failed.get(module) or \
                ("errors", "never ran (the run stopped early)")
            self._count(kind, f"{tid} ({why})")
            self.reported.add(tid)
        return self.counts

    def state(self, done):
        return {"counts": self.counts, "planned": len(self.planned), "reported": len(self.reported),
                "problems": self.problems, "done": done}


def run_suite(suite, stream=sys.stdout, verbosity=2, on_change=None):
    """Runs a unittest suite in this process; returns its CountingResult (finished)."""
    if not hasattr(stream, "writeln"):
        stream = unittest.runner._WritelnDecorator(stream)
    result = CountingResult(stream, True, verbosity, planned=list(iter_tests(suite)), on_change=on_change)
    result.startTestRun()
    try:
        suite(result)
    finally:
        result.stopTestRun()
    result.printErrors()
    result.finish()
    return result


def load_module_tests(path, pattern=None):
    """The tests of one test_*.py file, imported as the top-level module of its folder
    (as `unittest discover -t FOLDER` does); an import error becomes one erroring test."""
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = [f"*{pattern}*"]
    folder = os.path.dirname(os.path.abspath(path))
    return loader.discover(folder, pattern=os.path.basename(path), top_level_dir=folder)


def _write_json(path, obj):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def worker(path, result_file, pattern):
    """Child process: runs one module, keeping result_file up to date after each test."""
    suite = load_module_tests(path, pattern)
    result = run_suite(suite, on_change=lambda r: _write_json(result_file, r.state(False)))
    _write_json(result_file, result.state(True))
    return 0


def run_module(path, timeout, pattern=None, label=None, output=None):
    """Runs one test module in a child process under a timeout. Returns (counts,
    problems). A module that hangs or dies is named, and its tests that had not
    reported count as failed. output: where the module's own output goes (default ours)."""
    label = label or os.path.relpath(path, ROOT)
    say = print if output is None else (lambda *a, **k: None)
    fd, result_file = tempfile.mkstemp(prefix="minigpt_run_", suffix=".json")
    os.close(fd)
    os.unlink(result_file)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", path, "--result", result_file]
    if pattern:
        cmd += ["-k", pattern]
    t0 = time.monotonic()
    sys.stdout.flush()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=output, stderr=output, start_new_session=True)  # own group: a timeout kills its children too
    why = None
    try:
        rc = proc.wait(timeout=timeout)
        if rc != 0:
            why = f"exited with status {rc} before finishing"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        why = f"timed out after {timeout:.0f} s and was killed"
    state = None
    if os.path.exists(result_file):
        with open(result_file) as f:
            state = json.load(f)
        os.unlink(result_file)
    counts, problems = new_counts(), []
    if state:
        add_counts(counts, state["counts"])
        problems += state["problems"]
    if state is None or not state["done"]:
        why = why or "stopped without reporting"
        planned = load_planned_count(path, pattern)
        missing = max(planned - (state["reported"] if state else 0), 0)
        counts["failed"] += max(missing, 1)
        msg = f"{label} {why}: {missing} of its {planned} tests had not finished (counted as failed)"
        problems.append(f"failed: {msg}")
        say(f"\n== {msg}", flush=True)
    say(f"-- {label}: {summary_line(counts)} ({time.monotonic() - t0:.0f} s)", flush=True)
    return counts, problems


def run_modules(paths, timeout, pattern, jobs):
    """Runs the modules `jobs` at a time, the slowest known ones first, and yields each
    one's (counts, problems). Each module's output is held in a file and printed whole
    when it ends, so the outputs of modules running side by side do not interleave."""
    if jobs <= 1:
        for path in paths:
            yield run_module(path, timeout, pattern)
        return
    order = sorted(paths, key=lambda p: -SLOW_MODULES.get(os.path.relpath(p, os.path.join(ROOT, "tests")), 0))

    def one(path):
        t0 = time.monotonic()
        with tempfile.TemporaryFile(mode="w+b") as out:
            counts, problems = run_module(path, timeout, pattern, output=out)
            out.seek(0)
            text = out.read().decode(errors="replace")
        return path, counts, problems, text, time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in concurrent.futures.as_completed([pool.submit(one, p) for p in order]):
            path, counts, problems, text, seconds = future.result()
            label = os.path.relpath(path, ROOT)
            print(f"== {label}\n{text}", end="" if text.endswith("\n") or not text else "\n")
            for line in problems:
                if line.startswith("failed: ") and "had not finished" in line:
                    print(f"== {line[len('failed: '):]}")
            print(f"-- {label}: {summary_line(counts)} ({seconds:.0f} s)", flush=True)
            yield counts, problems


def load_planned_count(path, pattern):
    try:
        return sum(1 for _ in iter_tests(load_module_tests(path, pattern)))
    except Exception:  # noqa: BLE001 - only a count for the message
        return 0


def run_unit_tests(exe, timeout, args=(), env=None, title="unit tests"):
    """The doctest binary (with doctest's filter args, extra environment env), under a
    timeout. Returns (counts, problems)."""
    counts, problems = new_counts(), []
    print(f"== {title} ({exe}{''.join(' ' + a for a in args)})", flush=True)
    if not os.path.isfile(exe):
        problems.append(f"failed: {exe} does not exist (build it: make)")
        counts["failed"] += 1
        print(problems[-1])
        return counts, problems
    t0 = time.monotonic()
    try:
        proc = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, errors="replace",
                              timeout=timeout, env=dict(os.environ, **(env or {})))
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        def text(b):
            return (b.decode(errors="replace") if isinstance(b, bytes) else b) or ""
        out, err, rc = text(e.stdout), text(e.stderr), None
    sys.stdout.write(out[-20000:])
    sys.stderr.write(err[-20000:])
    m = re.search(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped", out)
    if m and rc is not None:
        n_pass, n_fail, n_skip = int(m.group(2)), int(m.group(3)), int(m.group(4))
        # A test case that crashes stops doctest, which then reports every case it did not
        # reach as "skipped": those count as failed here (the count of cases that should run
        # comes from --count, which leaves out the ones marked skip in the source).
        not_run = max(unit_test_count(exe, args) - n_pass - n_fail, 0)
        counts["passed"] += n_pass
        counts["failed"] += n_fail + not_run
        # Cases a filter (args) leaves out are reported as skipped too: not tests of this run.
        filtered_out = unit_test_count(exe) - unit_test_count(exe, args) if args else 0
        counts["skipped"] += max(n_skip - not_run - filtered_out, 0)
        if n_fail:
            problems.append(f"failed: {n_fail} unit test case(s) (see the doctest output above)")
        if not_run:
            problems.append(f"failed: {not_run} unit test case(s) never ran: the binary stopped early "
                            f"(exit status {rc}; a crash?), counted as failed")
    if rc is None or not m:
        n = unit_test_count(exe, args)
        why = f"timed out after {timeout:.0f} s and was killed" if rc is None else f"exited with status {rc} " \
              "without a doctest summary (a crash or a sanitizer abort)"
        counts["failed"] += max(n, 1)
        problems.append(f"failed: unit tests ({exe}) {why}: its {n} test cases counted as failed")
    elif rc != 0 and int(m.group(3)) == 0:
        counts["failed"] += 1  # a sanitizer report at exit, or a crash after the summary
        problems.append(f"failed: unit tests ({exe}) exited with status {rc} although no test case failed")
    if problems:
        print("\n== " + problems[-1], flush=True)
    print(f"-- {title}: {summary_line(counts)} ({time.monotonic() - t0:.0f} s)", flush=True)
    return counts, problems


# The kernel and forward tests once more with the AVX2 kernels forced (MINIGPT_ISA,
# src/kernels/kernels.h): the default run uses AVX-512 where the CPU has it, and
# users without AVX-512 run the AVX2 forward pass.
AVX2_UNIT_ARGS = ("--source-file=*test_kernels.cpp,*test_forward.cpp",)


def cpu_runs_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return all(f in flags for f in ("avx2", "fma", "f16c"))


def unit_test_count(exe, args=()):
    try:
        p = subprocess.run([exe, "--count", *args], capture_output=True, text=True, timeout=60)
        m = re.search(r"unskipped test cases passing the current filters:\s*(\d+)", p.stdout)
        return int(m.group(1)) if m else 0
    except (OSError, subprocess.TimeoutExpired):
        return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--sanitized", action="store_true")
    ap.add_argument("-k", dest="pattern", default=None, help="only Python tests whose id contains this")
    ap.add_argument("--unit-tests", default=None, help="the doctest binary (default BUILD/unit_tests)")
    ap.add_argument("--suites", nargs="*", default=None,
                    help="folders of Python test modules (default tests/python tests/e2e)")
    ap.add_argument("--unit-timeout", type=float, default=None, help=f"seconds (default {UNIT_TIMEOUT})")
    ap.add_argument("--module-timeout", type=float, default=None, help=f"seconds (default {MODULE_TIMEOUT})")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                    help="Python test modules run side by side (default: one per core)")
    ap.add_argument("--isa-rerun", choices=("avx2", "none"), default="avx2",
                    help="run the kernel and forward unit tests again with MINIGPT_ISA=avx2 (default), or not")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.result, args.pattern)

    build = os.path.abspath(args.build)
    os.environ["MINIGPT_BIN"] = os.path.join(build, "minigpt")
    os.environ["MINIGPT_BUILD"] = build
    factor = SANITIZED_FACTOR if args.sanitized else 1
    if args.sanitized:
        os.environ["MINIGPT_SANITIZED"] = "1"
    unit_timeout = args.unit_timeout or UNIT_TIMEOUT * factor
    module_timeout = args.module_timeout or MODULE_TIMEOUT * factor
    scratch = tempfile.mkdtemp(prefix="minigpt_tests_")
    os.environ["MINIGPT_TEST_TMP"] = scratch

    total, problems = new_counts(), []
    t0 = time.time()
    try:
        unit_exe = args.unit_tests or os.path.join(build, "unit_tests")
        c, p = run_unit_tests(unit_exe, unit_timeout)
        add_counts(total, c)
        problems += p
        if args.isa_rerun == "avx2" and cpu_runs_avx2():
            c, p = run_unit_tests(unit_exe, unit_timeout, AVX2_UNIT_ARGS, {"MINIGPT_ISA": "avx2"},
                                  "unit tests, MINIGPT_ISA=avx2")
        elif args.isa_rerun == "avx2":
            print("== unit tests, MINIGPT_ISA=avx2: skipped (this CPU has no AVX2 + FMA + F16C)", flush=True)
            c, p = dict(new_counts(), skipped=1), []
        else:
            c, p = new_counts(), []
        add_counts(total, c)
        problems += p
        suites = args.suites if args.suites is not None else [os.path.join(ROOT, "tests", s) for s in ("python", "e2e")]
        modules = [path for d in suites for path in sorted(glob.glob(os.path.join(d, "test_*.py")))]
        print(f"== {len(modules)} Python test modules in {', '.join(os.path.relpath(d, ROOT) for d in suites)}, "
              f"{args.jobs} at a time", flush=True)
        for c, p in run_modules(modules, module_timeout, args.pattern, args.jobs):
            add_counts(total, c)
            problems += p
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n(total {time.time() - t0:.0f} s)")
    if problems:
        print(f"{len(problems)} problem(s):")
        for line in problems:
            print(f"  {line}")
    print(f"({total['failed']} failures and {total['errors']} errors make up the failed count)")
    print(summary_line(total))
    return 1 if total["failed"] or total["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
