"""Prints the two bash commands of README.md's Quick start, one per line (what a
newcomer types): .ci/run runs exactly these, so the README stays true."""

import re
import sys

text = open(sys.argv[1]).read()
section = re.search(r"^##+ Quick start.*?(?=^## )", text, re.S | re.M)
blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", section.group(0) if section else "", re.S)
if len(blocks) < 2:
    sys.exit("README.md: no Quick start section with two bash blocks")
for block in blocks[:2]:
    lines = [line.split(" #")[0].strip().rstrip("\\") for line in block.strip().splitlines() if line.strip()]
    print(" ".join(lines))
