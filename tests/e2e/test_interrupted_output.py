"""Interrupted runs: `generate --trace` streams one JSON object per line to its
final path (by design: a trace of a long run is readable while it grows), so a
run killed midway must leave a file whose complete lines are all valid JSON.
Every other output (here the --attention export) goes through a temporary file
renamed when complete, so a killed run leaves nothing under the final name."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from helpers import ROOT, minigpt_bin

BUNDLED = os.path.join(ROOT, "model", "minigpt-brown.gguf")


class InterruptedOutput(unittest.TestCase):
    def test_killed_generate_leaves_valid_trace_lines_and_no_partial_attention(self):
        with tempfile.TemporaryDirectory(prefix="minigpt_kill_") as tmp:
            trace, attn = os.path.join(tmp, "run.jsonl"), os.path.join(tmp, "run.attn")
            p = subprocess.Popen([minigpt_bin(), "generate", "-m", BUNDLED, "-p", "The old man", "-n", "-1",
                                  "--ignore-eos", "--temp", "0", "--logit-lens", "--trace", trace, "--attention", attn],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.time() + 60
            lines_at_kill = 0
            while time.time() < deadline and p.poll() is None:
                if os.path.exists(trace):
                    with open(trace, "rb") as f:
                        lines_at_kill = f.read().count(b"\n")
                    if lines_at_kill >= 5:
                        break
                time.sleep(0.002)
            killed = p.poll() is None
            if killed:
                p.send_signal(signal.SIGKILL)
            stderr = p.communicate()[1].decode("utf-8", "replace")
            # Killed: SIGKILL's status. Finished first (the context filled up): a clean exit.
            self.assertEqual(p.returncode, -signal.SIGKILL if killed else 0, stderr[-3000:])
            with open(trace, "rb") as f:
                data = f.read()
            complete = data.split(b"\n")[:-1]  # the text after the last newline may be cut
            self.assertGreater(len(complete), 0)
            for i, line in enumerate(complete):
                try:
                    json.loads(line)
                except ValueError as e:
                    self.fail(f"trace line {i + 1} is not valid JSON ({e}): {line[:200]!r}")
            print(f"\n  killed: {killed}, {len(complete)} complete trace lines, all valid JSON", end=" ")
            if killed:
                self.assertFalse(os.path.exists(attn), "a killed run left a partial attention file under its final name")


if __name__ == "__main__":
    unittest.main()
