"""tests/run.py's counting, on synthetic suites with a known answer.

Each test method counts once (passed, failed, errored or skipped); a method with
subtests counts as its subtests; a class skipped in setUpClass counts all its
tests as skipped, an erroring setUpClass all its tests as errored; an expected
failure counts as passed. A module that hangs is killed after its timeout and
named, its unfinished tests counted as failed. The closing line keeps the form
"N passed, N failed, N skipped" (errors inside "failed") and the exit status is
non-zero whenever anything failed.
"""
import io
import os
import re
import subprocess
import sys
import textwrap
import unittest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_PY = os.path.join(TESTS, "run.py")
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "e2e"))
import run  # noqa: E402  (tests/run.py)
from fixtures import TempDirTest  # noqa: E402  (tests/e2e/fixtures.py)

# 1 pass, a class skipped in setUpClass (3 tests), 3 failing subtests, a class with an
# erroring test, a class whose setUpClass errors (2 tests), an expected failure.
SYNTHETIC = textwrap.dedent('''
    import unittest

    class Passing(unittest.TestCase):
        def test_pass(self):
            pass

    class SkippedInSetUpClass(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            raise unittest.SkipTest("engine not installed")
        def test_a(self): pass
        def test_b(self): pass
        def test_c(self): pass

    class FailingSubtests(unittest.TestCase):
        def test_three_failing_subtests(self):
            for i in range(3):
                with self.subTest(i=i):
                    self.assertEqual(i, -1)

    class Erroring(unittest.TestCase):
        def test_raises(self):
            raise RuntimeError("boom")

    class ErroringSetUpClass(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            raise RuntimeError("setup boom")
        def test_x(self): pass
        def test_y(self): pass

    class Expected(unittest.TestCase):
        @unittest.expectedFailure
        def test_known_bug(self):
            self.assertEqual(1, 2)
''')

# Less common shapes: mixed subtests, a skipped subtest, a body failing after its
# subtests, an unexpected success, a skip decorator, a tearDownClass error, an
# error in setUp, a setUpModule that errors (in its own module).
MORE = textwrap.dedent('''
    import unittest

    class Mixed(unittest.TestCase):
        def test_two_pass_one_fails(self):
            for i in range(3):
                with self.subTest(i=i):
                    self.assertLess(i, 2)
        def test_skipped_subtest(self):
            with self.subTest("a"):
                pass
            with self.subTest("b"):
                self.skipTest("not here")
        def test_body_fails_after_passing_subtests(self):
            with self.subTest("a"):
                pass
            self.fail("after the subtests")

    class Unexpected(unittest.TestCase):
        @unittest.expectedFailure
        def test_passes_anyway(self):
            pass

    @unittest.skip("whole class")
    class Decorated(unittest.TestCase):
        def test_a(self): pass
        def test_b(self): pass

    class TearDownClassError(unittest.TestCase):
        @classmethod
        def tearDownClass(cls):
            raise RuntimeError("teardown boom")
        def test_ok(self): pass

    class SetUpError(unittest.TestCase):
        def setUp(self):
            raise RuntimeError("setUp boom")
        def test_never_body(self): pass
''')

BROKEN_MODULE_SETUP = textwrap.dedent('''
    import unittest

    def setUpModule():
        raise RuntimeError("module setup boom")

    class A(unittest.TestCase):
        def test_1(self): pass
        def test_2(self): pass
''')

HANGS = textwrap.dedent('''
    import time, unittest

    class Hangs(unittest.TestCase):
        def test_quick(self):
            pass
        def test_hangs(self):
            time.sleep(600)
        def test_after(self):
            pass
''')


def write(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class Counting(TempDirTest):

    def counts_in_process(self, name, text):
        path = write(self.dir, name, text)
        result = run.run_suite(run.load_module_tests(path), stream=io.StringIO())
        sys.modules.pop(os.path.splitext(name)[0], None)
        return result.counts

    def test_synthetic_suite_counts_each_test_once(self):
        c = self.counts_in_process("test_synth.py", SYNTHETIC)
        self.assertEqual(c, {"passed": 2, "failed": 3, "errors": 3, "skipped": 3})
        self.assertEqual(run.summary_line(c), "2 passed, 6 failed, 3 skipped")

    def test_subtests_decorators_and_class_teardown(self):
        c = self.counts_in_process("test_more.py", MORE)
        # Mixed: 2 passed + 1 failed; 1 passed + 1 skipped; 1 passed + 1 failed (the body).
        # Unexpected success: failed. Decorated: 2 skipped. TearDownClassError: 1 passed + 1 error.
        # SetUpError: 1 error.
        self.assertEqual(c, {"passed": 5, "failed": 3, "errors": 2, "skipped": 3})

    def test_erroring_setup_module_counts_its_tests(self):
        c = self.counts_in_process("test_broken_setup.py", BROKEN_MODULE_SETUP)
        self.assertEqual(c, {"passed": 0, "failed": 0, "errors": 2, "skipped": 0})

    def test_module_in_a_child_process_and_an_import_error(self):
        path = write(self.dir, "test_synth.py", SYNTHETIC)
        c, problems = run.run_module(path, timeout=120, label="synthetic", output=subprocess.DEVNULL)
        self.assertEqual(c, {"passed": 2, "failed": 3, "errors": 3, "skipped": 3})
        self.assertEqual(len(problems), 6, problems)
        bad = write(self.dir, "test_bad_import.py", "import no_such_module_here\n")
        c, problems = run.run_module(bad, timeout=120, label="bad import", output=subprocess.DEVNULL)
        self.assertEqual(c, {"passed": 0, "failed": 0, "errors": 1, "skipped": 0})

    def test_a_hanging_module_is_killed_and_named(self):
        path = write(self.dir, "test_hangs.py", HANGS)
        c, problems = run.run_module(path, timeout=5, label="hanging module", output=subprocess.DEVNULL)
        # test_quick passed; test_hangs and test_after never reported.
        self.assertEqual(c, {"passed": 1, "failed": 2, "errors": 0, "skipped": 0})
        self.assertTrue(any("hanging module timed out after 5 s" in p for p in problems), problems)


class WholeRun(TempDirTest):
    """run.py's command line: a fake doctest binary and the synthetic suite."""

    def setUp(self):
        super().setUp()
        self.suite = os.path.join(self.dir, "suite")
        os.mkdir(self.suite)

    def fake_unit_tests(self, body):
        path = write(self.dir, "unit_tests", "#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def run_py(self, unit, *extra):
        # The fake binaries answer once: no second run under MINIGPT_ISA=avx2 unless a test asks for it.
        if "--isa-rerun" not in extra:
            extra = ("--isa-rerun", "none", *extra)
        p = subprocess.run([sys.executable, RUN_PY, "--build", self.dir, "--unit-tests", unit, "--suites", self.suite,
                            *extra], capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout.strip().splitlines()[-1], p.stdout

    def test_last_line_and_exit_status(self):
        write(self.suite, "test_synth.py", SYNTHETIC)
        summary = "[doctest] test cases: 10 | 9 passed | 1 failed | 0 skipped\n"
        unit = self.fake_unit_tests(f"printf '{summary}'\nexit 1\n")
        rc, last, _ = self.run_py(unit)
        self.assertEqual(last, "11 passed, 7 failed, 3 skipped")
        self.assertEqual(rc, 1)

    def test_all_passing_exits_zero(self):
        write(self.suite, "test_ok.py", "import unittest\nclass A(unittest.TestCase):\n    def test_a(self): pass\n")
        unit = self.fake_unit_tests("printf '[doctest] test cases: 4 | 4 passed | 0 failed | 0 skipped\\n'\n")
        rc, last, _ = self.run_py(unit)
        self.assertEqual((rc, last), (0, "5 passed, 0 failed, 0 skipped"))

    def test_modules_side_by_side_count_as_one_at_a_time(self):
        # --jobs 2 runs the modules in parallel and prints each one's output whole.
        write(self.suite, "test_synth.py", SYNTHETIC)
        write(self.suite, "test_ok.py", "import unittest\nclass A(unittest.TestCase):\n    def test_a(self): pass\n")
        unit = self.fake_unit_tests("printf '[doctest] test cases: 4 | 4 passed | 0 failed | 0 skipped\\n'\n")
        results = {jobs: self.run_py(unit, "--jobs", jobs) for jobs in ("1", "2")}
        self.assertEqual(results["1"][:2], (1, "7 passed, 6 failed, 3 skipped"))
        self.assertEqual(results["2"][:2], results["1"][:2])
        out = results["2"][2]
        for name in ("test_synth.py", "test_ok.py"):
            self.assertEqual(len(re.findall(rf"^-- \S*{name}: ", out, re.M)), 1, out)

    def test_unit_binary_that_exits_non_zero_after_a_clean_summary_fails(self):
        # e.g. LeakSanitizer's report at exit: every test case passed, the exit status is not 0.
        unit = self.fake_unit_tests("printf '[doctest] test cases: 4 | 4 passed | 0 failed | 0 skipped\\n'\nexit 23\n")
        rc, last, out = self.run_py(unit)
        self.assertEqual((rc, last), (1, "4 passed, 1 failed, 0 skipped"))
        self.assertIn("exited with status 23 although no test case failed", out)

    def test_unit_cases_a_crash_kept_from_running_count_as_failed(self):
        # doctest after a crashing test case: the cases it did not reach are reported "skipped".
        unit = self.fake_unit_tests(
            'if [ "$1" = --count ]; then echo "[doctest] unskipped test cases passing the current filters: 146"; '
            'exit 0; fi\nprintf "[doctest] test cases:  7 |  6 passed | 1 failed | 141 skipped\\n"\nexit 1\n')
        rc, last, out = self.run_py(unit)
        # 148 cases: 146 should run (2 are marked skip in the source), 7 did: 6 passed, 1 + 139 failed.
        self.assertEqual((rc, last), (1, "6 passed, 140 failed, 2 skipped"))
        self.assertIn("139 unit test case(s) never ran", out)

    def test_kernel_and_forward_cases_run_again_under_minigpt_isa_avx2(self):
        # The second run passes doctest's source-file filter and MINIGPT_ISA=avx2; the cases
        # the filter leaves out (doctest reports them skipped) are not counted.
        unit = self.fake_unit_tests(
            'if [ "$1" = --count ]; then n=10; [ -n "$2" ] && n=3; '
            'echo "[doctest] unskipped test cases passing the current filters: $n"; exit 0; fi\n'
            'if [ "$MINIGPT_ISA" = avx2 ] && [ "$1" = "--source-file=*test_kernels.cpp,*test_forward.cpp" ]; then\n'
            '  printf "[doctest] test cases: 3 | 3 passed | 0 failed | 7 skipped\\n"\n'
            'else printf "[doctest] test cases: 10 | 10 passed | 0 failed | 0 skipped\\n"; fi\n')
        rc, last, out = self.run_py(unit, "--isa-rerun", "avx2")
        avx2 = run.cpu_runs_avx2()
        self.assertEqual((rc, last), (0, "13 passed, 0 failed, 0 skipped" if avx2 else "10 passed, 0 failed, 1 skipped"))
        if avx2:
            self.assertIn("-- unit tests, MINIGPT_ISA=avx2: 3 passed, 0 failed, 0 skipped", out)

    def test_hanging_unit_binary_is_killed_and_named(self):
        unit = self.fake_unit_tests(
            'if [ "$1" = --count ]; then echo "[doctest] unskipped test cases passing the current filters: 7"; '
            'exit 0; fi\nexec sleep 600\n')
        rc, last, out = self.run_py(unit, "--unit-timeout", "2")
        self.assertEqual((rc, last), (1, "0 passed, 7 failed, 0 skipped"))
        self.assertIn(f"unit tests ({unit}) timed out after 2 s", out)


if __name__ == "__main__":
    unittest.main()
