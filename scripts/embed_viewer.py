#!/usr/bin/env python3
"""Turns the viewer page (viewer/viewer.html, .css, .js) into the C++ source of
one of the two strings `minigpt view` writes the page from: the head (HTML and
CSS up to the data placeholder) and the tail (the script and closing tags); the
data blocks go between them (src/viewer/assets.h).

The Makefile runs it at build time, so the sources live in the build folder and
nothing generated is committed:

    python3 scripts/embed_viewer.py head build/gen/viewer/assets_head.cpp
    python3 scripts/embed_viewer.py tail build/gen/viewer/assets_tail.cpp

Needs only the Python standard library (Debian's python3-minimal).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from atomic_file import atomic_open  # noqa: E402

NAMES = {"head": "kViewerPageHead", "tail": "kViewerPageTail"}
DELIM = "MGVIEW"  # raw-string delimiter; must not occur in the page


def read(name):
    with open(os.path.join(ROOT, "viewer", name), encoding="utf-8") as f:
        return f.read()


def page_parts():
    """The page with the style and script inlined, split at the data placeholder: {"head": ..., "tail": ...}."""
    html, css, js = read("viewer.html"), read("viewer.css"), read("viewer.js")
    for marker in ("/*@MINIGPT_STYLE@*/", "/*@MINIGPT_SCRIPT@*/", "<!--@MINIGPT_DATA@-->"):
        if html.count(marker) != 1:
            sys.exit(f"viewer/viewer.html: expected the marker {marker} exactly once")
    if "</script" in js.lower() or "</style" in css.lower():
        sys.exit("viewer: '</script' or '</style' inside the inlined script/style would end it early")
    page = html.replace("/*@MINIGPT_STYLE@*/", css.rstrip("\n")).replace("/*@MINIGPT_SCRIPT@*/", js.rstrip("\n"))
    if f"){DELIM}\"" in page:
        sys.exit(f"viewer: the page contains the raw-string delimiter ){DELIM}\"")
    head, tail = page.split("<!--@MINIGPT_DATA@-->")
    return {"head": head, "tail": tail}


def cpp_source(part, text):
    # Pieces well under compilers' string-literal limits; adjacent literals concatenate.
    pieces = [text[i:i + 12000] for i in range(0, len(text), 12000)] or [""]
    body = "\n".join(f'R"{DELIM}({p}){DELIM}"' for p in pieces)
    return ("// Generated at build time by scripts/embed_viewer.py from viewer/viewer.{html,css,js}.\n"
            "#include \"viewer/assets.h\"\n\nnamespace minigpt {\n\n"
            f"const std::string_view {NAMES[part]} =\n{body};\n\n}}  // namespace minigpt\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=sorted(NAMES), help="which string: the page up to the data, or after it")
    ap.add_argument("out", help="the C++ file to write (written to a temporary name, then renamed)")
    args = ap.parse_args()
    text = cpp_source(args.part, page_parts()[args.part])
    with atomic_open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
