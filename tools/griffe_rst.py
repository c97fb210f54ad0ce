"""A griffe extension (mkdocs.yml: mkdocstrings' ``extensions``): hf-noisy's docstrings, written for ``help()``
and Sphinx-style readers, rendered as Markdown by mkdocstrings.

* A run of ``>>>`` / ``...`` lines (with the output lines after them) becomes a ``pycon`` code block, where
  Markdown would otherwise read ``>>>`` as three nested quotes.
* A Sphinx role, ``:func:`~hf_noisy.noise.apply_noise``` or ``:data:`MAX_SEED```, becomes inline code of the
  name as Sphinx would show it (the last part after ``~``).
* A paragraph ending in ``::`` (reStructuredText's literal-block marker) ends in ``:``; the indented block after
  it is already a Markdown code block.

The docstrings themselves are left as they are.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|meth|class|mod|data|attr|exc|obj|const|ref):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"``{target.rsplit('.', 1)[-1] if tilde else target}``"


def markdown(text: str) -> str:
    """``text`` (a docstring) with doctest runs fenced, Sphinx roles as code and ``::`` markers as ``:``."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            block = []
            while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
                block.append(lines[i][len(indent):])
                i += 1
            out += ["", f"{indent}```pycon", *(indent + b for b in block), f"{indent}```", ""]
            continue
        line = ROLE.sub(_role, line)
        if line.rstrip().endswith("::") and not line.strip() == "::":
            line = line.rstrip()[:-1]
        out.append(line)
        i += 1
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
