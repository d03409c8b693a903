"""Test-case bases shared by the e2e and Python tests: a temporary folder made
for each test (TempDirTest) or once for a class (TempDirClass), a class's tiny
random model with its reference weights (TinyModelClass), and the tab-separated
case files under tests/data (read_tsv)."""
import os
import tempfile
import unittest

from helpers import tiny_model  # helpers puts scripts/ on sys.path
import reference  # noqa: E402  (scripts/reference.py)


class TempDirTest(unittest.TestCase):
    """self.tmp (a TemporaryDirectory) and self.dir (its path), fresh for every test."""

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name


class TempDirClass(unittest.TestCase):
    """cls.tmp, one TemporaryDirectory for the class's tests; self.path(name) is a file in it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)  # also when a subclass's setUpClass fails after this

    def path(self, name):
        return os.path.join(self.tmp.name, name)


class TinyModelClass(TempDirClass):
    """cls.hf, cls.gguf: the tiny random model helpers.tiny_model(seed=SEED, std=STD) makes (std 0.2:
    peaked attention patterns, so a wrong row, position or head shows); cls.params: its weights as
    scripts/reference.py reads them."""
    SEED, STD = 5, 0.2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hf, cls.gguf = tiny_model(seed=cls.SEED, std=cls.STD)
        cls.params = reference.load_hf(cls.hf)


def read_tsv(path):
    """The rows of a UTF-8 tab-separated file as lists of fields; lines starting with # and blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if not line.startswith("#") and line.strip()]
