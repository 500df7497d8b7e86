"""The shape every paper-scale params file of a small-image paper table has (tests/test_paper_cifar.py,
test_paper_isl.py, test_paper_stl10.py): one file per row, each naming its row and method, no data_root, a source
comment on every value, lines of at most 120 characters, and no float PyYAML would read as a string."""
import re

import yaml


def check_paper_params_file(table, row: str) -> dict:
    """Check ``params/<table>/<row>.yaml`` of ``table`` (a ``PaperTable``) and return its values; the folder holds
    one file per row of the table and no other."""
    assert {p.stem for p in table.params_dir.glob("*.yaml")} == set(table.rows)
    text = table.params_file(row).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["paper_row"] == f"{table.name}/{row}" and data["method"] == table.rows[row][0]
    assert "data_root" not in data
    for line in text.splitlines():
        if re.match(r"^[A-Za-z_]", line):
            assert line.partition("#")[2].strip(), f"{row}: no source comment on {line!r}"
        assert len(line) <= 120
    for value in data.values():  # PyYAML reads 1e-4 as a string
        assert not (isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value))
    return data
