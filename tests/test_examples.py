"""The gallery examples, read as scripts (they are run by sphinx-gallery)."""

import ast
import re
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "docs" / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_ends_its_drawing_with_plt_show(path):
    # Run as `python docs/examples/plot_x.py`, an example shows its figures
    # only through plt.show(); sphinx-gallery captures them either way.
    source = path.read_text()
    drawing = [
        ast.get_source_segment(source, node)
        for node in ast.parse(source).body
        if re.search(r"\bplt\.|Display\b", ast.get_source_segment(source, node))
    ]
    assert drawing, f"{path.name} draws nothing"
    assert drawing[-1] == "plt.show()"
