#!/usr/bin/env python3
"""Fails when an #include goes against the layers drawn in docs/architecture.md.

Each folder of src/ (and tokenizer/) may include from the folders listed for it
and from itself; nothing else. Includes are written with their folder
("runtime/model.h"), so the folder is the first path component. Run by `make test`.
Usage: check_includes.py [ROOT]   (exit 1 and one line per violation)
"""
import pathlib
import re
import sys

# folder -> folders it may include from (itself always allowed). Arrows point down:
# cli -> viewer -> analysis -> eval -> runtime -> kernels -> format -> util; tokenizer apart.
ALLOWED = {
    "util": set(),
    "format": {"util"},
    "kernels": {"format", "util"},
    "tokenizer": {"util"},
    "runtime": {"kernels", "format", "util", "tokenizer"},
    "eval": {"runtime", "kernels", "format", "util", "tokenizer"},
    "analysis": {"eval", "runtime", "kernels", "format", "util", "tokenizer"},
    "viewer": {"analysis", "eval", "runtime", "format", "util", "tokenizer"},
    "cli": {"viewer", "analysis", "eval", "runtime", "kernels", "format", "util", "tokenizer"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def check(root):
    root = pathlib.Path(root)
    errors = []
    files = [p for p in (root / "src").rglob("*") if p.suffix in (".h", ".cpp")]
    files += [p for p in (root / "tokenizer").glob("*") if p.suffix in (".h", ".cpp")]
    for path in sorted(files):
        rel = path.relative_to(root)
        layer = rel.parts[1] if rel.parts[0] == "src" else "tokenizer"
        if layer not in ALLOWED:
            errors.append(f"{rel}: folder '{layer}' is not a layer of docs/architecture.md")
            continue
        for lineno, name in ((path.read_text()[:m.start()].count("\n") + 1, m.group(1))
                             for m in INCLUDE.finditer(path.read_text())):
            parts = name.split("/")
            if len(parts) < 2:
                errors.append(f"{rel}:{lineno}: #include \"{name}\" has no folder (write \"{layer}/{name}\")")
                continue
            target = parts[0]
            if target == layer:
                continue
            if target not in ALLOWED:
                errors.append(f"{rel}:{lineno}: #include \"{name}\": unknown folder '{target}'")
            elif target not in ALLOWED[layer]:
                errors.append(f"{rel}:{lineno}: #include \"{name}\": {layer}/ may not include from {target}/ "
                              f"(allowed: {', '.join(sorted(ALLOWED[layer])) or 'nothing'})")
    return errors


if __name__ == "__main__":
    errs = check(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    for e in errs:
        print(e)
    if errs:
        print(f"include check: {len(errs)} include(s) against the layers (docs/architecture.md)")
        sys.exit(1)
    print("include check: every include follows the layers")
