"""YAML from strangers (issue 23, E and the push-metric part of I): no anchors or aliases (a 440-byte spec of
nested aliases no longer expands to gigabytes), short quotes of bad values, and a card whose YAML header is a
list or not YAML is one line, not a traceback."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from hf_noisy.cli import main
from hf_noisy.noise import SpecError, load_spec
from hf_noisy.safe_yaml import MAX_QUOTE, YamlError, load, quote


def _laughs() -> str:
    """The red team's spec: nine levels of nine aliases each (9**9 strings once expanded), about 440 bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]")
    lines.append("version: 1\nspatial: *i")
    return "\n".join(lines) + "\n"


def test_a_spec_of_nested_aliases_is_refused_before_it_expands(tmp_path: Path):
    spec = tmp_path / "laughs.yaml"
    spec.write_text(_laughs())
    assert spec.stat().st_size < 700
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.process_time()
    with pytest.raises(SpecError) as caught:
        load_spec(str(spec))
    assert "anchors and aliases" in str(caught.value) and "\n" not in str(caught.value)
    assert time.process_time() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB: nothing expanded


def test_plain_yaml_and_json_still_load():
    assert load("version: 1\nspatial: [{op: scale, prob: 0.5, scale: 0.1}]") == {
        "version": 1, "spatial": [{"op": "scale", "prob": 0.5, "scale": 0.1}]}
    assert load('{"a": [1, 2]}') == {"a": [1, 2]}
    for bad in ("a: &x 1\nb: *x", "a: [1, 2", "!!python/object:os.system ls"):
        with pytest.raises(YamlError):
            load(bad)


def test_a_bad_value_is_quoted_in_at_most_80_characters(tmp_path: Path):
    assert len(quote("x" * 10_000)) <= MAX_QUOTE and len(quote(list(range(10_000)))) <= MAX_QUOTE
    spec = tmp_path / "long.yaml"
    spec.write_text("version: 1\nempty_masks: " + "x" * 100_000 + "\n")
    with pytest.raises(SpecError) as caught:
        load_spec(str(spec))
    assert "empty_masks must be 'keep' or 'drop'" in str(caught.value) and len(str(caught.value)) < 250


@pytest.mark.parametrize("header, words", [("- sdk: gradio\n- app_file: app.py\n", "must be a mapping"),
                                            ("sdk: [gradio\n", "not valid YAML"),
                                            ("sdk: &s gradio\napp_file: *s\n", "anchors and aliases")])
def test_push_metric_refuses_a_bad_card_header_in_one_line(tmp_path: Path, capsys, header: str, words: str):
    module = tmp_path / "mask_boundary_ap"
    module.mkdir()
    for name in ("mask_boundary_ap.py", "app.py", "requirements.txt"):
        (module / name).write_text("")
    (module / "README.md").write_text(f"---\n{header}---\n# card\n")
    assert main(["push-metric", "--repo-id", "org/mask_boundary_ap", "--module", str(module)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err
