#!/usr/bin/env python3
"""The README's embedding example is examples/echo_plugin.cpp, verbatim (so the code a reader
copies is the code the install test builds and runs)."""
import re
import sys

readme, example = sys.argv[1], sys.argv[2]
text = open(readme, encoding="utf-8").read()
blocks = re.findall(r"```cpp\n(.*?)```", text, re.S)
source = open(example, encoding="utf-8").read()
if source not in blocks:
    print(f"{readme} has no ```cpp block equal to {example}; paste the example again")
    sys.exit(1)
print("README example matches", example)
