"""Bad inputs (tests/bad_inputs/cases.tsv, written by make_bad_inputs.py there):
malformed GGUF files, safetensors and pickles for scripts/convert.py, GPT-2
tokenizer files, and command lines beyond the model. Every case must exit 1 or 2
(exactly the status in the case's optional fourth column, 2 for the flags out of
range of every command) with one message that names the file (or the option) and the problem, with no
Python traceback, sanitizer report or uncaught exception, and leave no output
file behind (not even a temporary one).

Also replays tests/fuzz/regressions/cli/ (NUL-separated argv that once crashed
the command-line fuzz target) through the binary: any exit code 0..2 is fine,
a crash or a sanitizer report is not.
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

from fixtures import read_tsv
from helpers import ROOT, SANITIZED, SANITIZER_OR_CRASH, check_exit, minigpt_bin, run_minigpt, tiny_model

BAD = os.path.join(ROOT, "tests", "bad_inputs")
CLI_REGRESSIONS = os.path.join(ROOT, "tests", "fuzz", "regressions", "cli")


def read_cases():
    # rel, command, expected message, and an optional fourth column: the exit status the case must give
    return [(rel, command, expected, int(code[0]) if code else None)
            for rel, command, expected, *code in read_tsv(os.path.join(BAD, "cases.tsv"))]


def check_clean(test, where, stderr):
    for bad in SANITIZER_OR_CRASH:
        test.assertNotIn(bad, stderr, f"{where}: {bad!r} in stderr:\n{stderr[-3000:]}")


class BadInputs(unittest.TestCase):
    def run_case(self, rel, command, expected, code=None):
        path = os.path.join(BAD, rel)
        with tempfile.TemporaryDirectory(prefix="minigpt_bad_") as tmp:
            out_dir = os.path.join(tmp, "out")
            os.mkdir(out_dir)
            out = os.path.join(out_dir, "result.out")
            subs = {"{FILE}": path, "{OUT}": out}
            if "{MODEL}" in command or "{MODEL}" in open(path, "rb").read().decode("utf-8", "replace"):
                subs["{MODEL}"] = tiny_model()[1]
            named = path  # what the message must name
            if "{DIR}" in command:
                hf = os.path.join(tmp, "hf")
                shutil.copytree(tiny_model()[0], hf)
                for ckpt in ("model.safetensors", "pytorch_model.bin"):
                    if os.path.exists(os.path.join(hf, ckpt)):
                        os.remove(os.path.join(hf, ckpt))
                named = os.path.join(hf, "model.safetensors" if rel.endswith(".safetensors") else "pytorch_model.bin")
                shutil.copyfile(path, named)
                subs["{DIR}"] = hf

            def sub(arg):
                for k, v in subs.items():
                    arg = arg.replace(k, v)
                return arg

            if command == "@args":
                with open(path, "rb") as f:
                    argv = [sub(a) for a in f.read().decode("utf-8").split("\0")]
                named = None  # the expected text names the option
            else:
                argv = [sub(a) for a in shlex.split(command)]
            if argv[0] == "convert.py":
                p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "convert.py"), *argv[1:], "-q"],
                                   capture_output=True, cwd=ROOT, timeout=120)
            else:
                env = dict(os.environ)
                env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
                p = subprocess.run([minigpt_bin(), *argv], capture_output=True, cwd=ROOT, timeout=120,
                                   stdin=subprocess.DEVNULL, env=env)
            stderr = p.stderr.decode("utf-8", "replace")
            where = f"{rel}: {' '.join(argv)}"
            check_exit(p, (1, 2) if code is None else code, where)
            check_clean(self, where, stderr)
            self.assertIn(expected, stderr, f"{where}: the message does not say {expected!r}")
            if named:
                self.assertIn(named, stderr, f"{where}: the message does not name the file")
            self.assertEqual(os.listdir(out_dir), [], f"{where}: output left behind")


def _make(rel, command, expected, code):
    def test(self):
        self.run_case(rel, command, expected, code)
    return test


for _rel, _command, _expected, _code in read_cases():
    _name = "test_bad_input_" + os.path.splitext(_rel)[0].replace("/", "_")
    setattr(BadInputs, _name, _make(_rel, _command, _expected, _code))


class CliFuzzRegressions(unittest.TestCase):
    def test_bad_input_cli_fuzz_regressions(self):
        files = sorted(f for f in os.listdir(CLI_REGRESSIONS) if not f.startswith(".")) if os.path.isdir(CLI_REGRESSIONS) else []
        if not files:
            self.skipTest("no CLI fuzz regressions recorded")
        for name in files:
            with open(os.path.join(CLI_REGRESSIONS, name), "rb") as f:
                argv = f.read().split(b"\0")
            if argv[0] == b"bench":
                continue
            with tempfile.TemporaryDirectory(prefix="minigpt_cli_") as tmp:
                env = dict(os.environ)
                env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
                p = subprocess.run([minigpt_bin(), *argv], capture_output=True, cwd=tmp, timeout=60,
                                   stdin=subprocess.DEVNULL, env=env)
            check_exit(p, (0, 1, 2), name)
            check_clean(self, name, p.stderr.decode("utf-8", "replace"))


if __name__ == "__main__":
    unittest.main()
