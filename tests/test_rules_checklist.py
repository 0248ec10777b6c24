"""docs/rules.md is the specification's checklist: it must name real tests and real files."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKLIST = ROOT / "docs" / "rules.md"
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
PATH_REF = re.compile(r"`((?:[\w.-]+/)+[\w.-]*)`")


def _rows():
    rows = []
    for line in CHECKLIST.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"R\d+", cells[0]):
            rows.append(cells)
    return rows


def _test_names(path):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_rule_has_a_place_and_a_test_that_exist():
    rows = _rows()
    assert len(rows) >= 40
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids)), "rule ids are unique"
    missing = []
    for rule_id, _rule, _seed, where, tests in rows:
        refs = TEST_REF.findall(tests)
        if not refs:
            missing.append(f"{rule_id}: no test")
        for path, name in refs:
            if not (ROOT / path).is_file() or name not in _test_names(path):
                missing.append(f"{rule_id}: {path}::{name}")
        places = PATH_REF.findall(where)
        if not places:
            missing.append(f"{rule_id}: nowhere enforced")
        for place in places:
            if not (ROOT / place).exists():
                missing.append(f"{rule_id}: {place}")
    assert not missing, missing


def test_every_issue_11_rule_is_tested_by_a_test_named_after_it():
    for rule_id, rule, _seed, _where, tests in _rows():
        if rule.startswith("I11-"):
            names = [name for _path, name in TEST_REF.findall(tests)]
            assert any(name.startswith("test_rule_") for name in names), rule_id
