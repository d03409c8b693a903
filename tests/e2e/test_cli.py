"""The command line: help texts, and every bad argument of `generate` and
`tokenize` gets a one-line error naming it and a non-zero exit status.

Exit status: 2 for usage errors (bad flag or value, caught before the model is
loaded where possible), 1 for runtime errors (a file that does not exist).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import run_minigpt, tiny_model  # noqa: E402


class Help(unittest.TestCase):
    def test_top_level_help_lists_commands(self):
        p = run_minigpt(["--help"])
        self.assertEqual(p.returncode, 0)
        for cmd in (b"generate", b"tokenize", b"inspect"):
            self.assertIn(cmd, p.stdout)

    def test_generate_help_lists_llama_cpp_flags(self):
        p = run_minigpt(["generate", "--help"])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        out = p.stdout.decode()
        for flag in ("-m, --model", "-p, --prompt", "-f, --file", "-n, --n-predict", "-c, --ctx-size",
                     "-t, --threads", "-s, --seed", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                     "--repeat-last-n", "-b, --batch-size", "--stop", "--stats", "--json", "--ignore-eos",
                     "--no-display-prompt", "--ids"):
            self.assertIn(flag, out)
        # llama.cpp's defaults
        for default in ("(default: 0.8)", "(default: 40)", "(default: 0.95)", "(default: 0.05)", "(default: 1.0)",
                        "(default: 64)"):
            self.assertIn(default, out)

    def test_tokenize_help(self):
        p = run_minigpt(["tokenize", "--help"])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        for flag in (b"--pieces", b"--special", b"--vocab", b"--merges"):
            self.assertIn(flag, p.stdout)


class BadArguments(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hf, cls.gguf = tiny_model(seed=0)

    def fails(self, args, *words, code=2, stdin=None):
        """Runs minigpt with args; expects exit `code`, nothing on stdout and one
        line on stderr containing every word."""
        p = run_minigpt(args, stdin=stdin, code=code)  # also: no sanitizer report
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.stdout, b"", args)
        self.assertEqual(len(err.strip().splitlines()), 1, f"{args}: not one line: {err!r}")
        for w in words:
            self.assertIn(w, err, f"{args}: {w!r} not in {err!r}")
        return err

    def gen(self, *extra, prompt=True):
        return ["generate", "-m", self.gguf] + (["-p", "hello"] if prompt else []) + list(extra)

    def test_unknown_flag(self):
        self.fails(self.gen("--bogus"), "bogus", "does not exist")
        self.fails(["tokenize", "-m", self.gguf, "--frobnicate"], "frobnicate", "does not exist")

    def test_unknown_command(self):
        err = run_minigpt(["generat"], code=2)
        self.assertIn(b'unknown command "generat"', err.stderr)

    def test_stray_positional_argument(self):
        self.fails(self.gen("extra"), "unexpected argument", "extra")

    def test_missing_model(self):
        self.fails(["generate", "-p", "hello"], "-m/--model", "required")
        self.fails(["tokenize", "-p", "hello"], "--model", "--vocab")

    def test_nonexistent_model_file(self):
        self.fails(["generate", "-m", "/nonexistent/model.gguf", "-p", "hi"], "no such file",
                   "/nonexistent/model.gguf", code=1)
        self.fails(["tokenize", "-m", "/nonexistent/model.gguf", "-p", "hi"], "no such file", code=1)

    def test_flag_without_value(self):
        self.fails(self.gen("-n"), "n", "missing an argument")

    def test_missing_prompt(self):
        self.fails(self.gen(prompt=False), "no prompt", "--prompt")
        self.fails(self.gen("--ids", "1 2"), "only one of")

    def test_bad_numbers(self):
        cases = [
            (("-n", "-2"), ("--n-predict", "-2")),
            (("-n", "ten"), ("--n-predict", "expected an integer", "ten")),
            (("--temp", "-1"), ("--temp", ">= 0", "-1")),
            (("--temp", "hot"), ("--temp", "expected a number")),
            (("--temp", "nan"), ("--temp", "expected a number")),
            (("-t", "0"), ("--threads", "between 1 and 1024", "0")),
            (("-t", "-3"), ("--threads", "-3")),
            (("--top-k", "abc"), ("--top-k", "expected an integer", "abc")),
            (("--top-k", "-5"), ("--top-k", ">= 0")),
            (("--top-k", "4.5"), ("--top-k", "expected an integer")),
            (("--top-p", "0"), ("--top-p", "(0, 1]", "0")),
            (("--top-p", "1.5"), ("--top-p", "(0, 1]", "1.5")),
            (("--top-p", "-0.2"), ("--top-p", "(0, 1]")),
            (("--min-p", "1.01"), ("--min-p", "[0, 1]", "1.01")),
            (("--min-p", "-0.1"), ("--min-p", "[0, 1]")),
            (("--repeat-penalty", "0"), ("--repeat-penalty", "> 0")),
            (("--repeat-last-n", "-2"), ("--repeat-last-n",)),
            (("-c", "-1"), ("--ctx-size", ">= 0")),
            (("-b", "0"), ("--batch-size", "at least 1")),
            (("-s", "-2"), ("--seed",)),
            (("-s", "x"), ("--seed", "expected an integer")),
            (("--ids", "1 two"), ("--ids",)),
            (("--stop", ""), ("--stop", "empty")),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                ids_case = args[0] == "--ids"
                self.fails(self.gen(*args, prompt=not ids_case), *words)

    def test_value_errors_come_before_loading_the_model(self):
        # A bad value is reported even when the model file is missing.
        self.fails(["generate", "-m", "/nonexistent.gguf", "-p", "x", "--top-p", "2"], "--top-p")

    def test_context_larger_than_the_model(self):
        self.fails(self.gen("-c", "4096"), "--ctx-size", "4096", "128")

    def test_prompt_longer_than_the_context(self):
        self.fails(self.gen("-c", "8", prompt=False) + ["-p", "the old man looked at the sea " * 4],
                   "the prompt is", "context holds 8")
        self.fails(["generate", "-m", self.gguf, "--ids", " ".join(["5"] * 200)], "the prompt is 200 tokens",
                   "context holds 128")

    def test_token_id_outside_the_vocabulary(self):
        self.fails(["generate", "-m", self.gguf, "--ids", "1 5000"], "--ids", "5000")

    def test_unreadable_prompt_file(self):
        self.fails(self.gen("-f", "/nonexistent/prompt.txt", prompt=False), "-f/--file", "cannot read", code=1)

    def test_tokenize_bad_arguments(self):
        self.fails(["tokenize", "--vocab", os.path.join(self.hf, "vocab.json"), "-p", "x"], "--merges")
        self.fails(["tokenize", "-m", self.gguf, "--vocab", os.path.join(self.hf, "vocab.json"),
                    "--merges", os.path.join(self.hf, "merges.txt"), "-p", "x"], "either")
        self.fails(["tokenize", "-m", self.gguf, "-p", "x", "-f", "y"], "only one of")


class Tokenize(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hf, cls.gguf = tiny_model(seed=0)

    def test_gguf_and_vocab_files_agree_and_decode_back(self):
        from helpers import gpt2_token_bytes
        text = "The old man looked at the sea. It was 6:30 in the morning!"
        a = run_minigpt(["tokenize", "-m", self.gguf, "-p", text])
        b = run_minigpt(["tokenize", "--vocab", os.path.join(self.hf, "vocab.json"),
                         "--merges", os.path.join(self.hf, "merges.txt"), "-p", text])
        c = run_minigpt(["tokenize", "-m", self.gguf], stdin=text.encode())
        for p in (a, b, c):
            self.assertEqual(p.returncode, 0, p.stderr.decode())
        ids = [int(t) for t in a.stdout.split()]
        self.assertEqual(a.stdout, b.stdout)
        self.assertEqual(a.stdout, c.stdout)
        tb = gpt2_token_bytes(self.hf)
        self.assertEqual(b"".join(tb[i] for i in ids).decode("utf-8"), text)
        self.assertLess(len(ids), len(text))  # merges were applied

    def test_pieces_and_special(self):
        p = run_minigpt(["tokenize", "-m", self.gguf, "--pieces", "-p", "Hi<|endoftext|>"])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        lines = p.stdout.decode().splitlines()
        self.assertGreater(len(lines), 2)  # the special text is ordinary text by default
        self.assertNotIn("1023", p.stdout.decode().split())
        q = run_minigpt(["tokenize", "-m", self.gguf, "--special", "-p", "Hi<|endoftext|>"])
        self.assertEqual(q.stdout.split()[-1], b"1023")


if __name__ == "__main__":
    unittest.main()
