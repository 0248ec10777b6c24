"""A well-formed BPMN file in GBK, GB18030 or UTF-16 (as Chinese tools often save them)
validates and deploys as its UTF-8 twin would; a file that is neither UTF-8 nor declares its
encoding is still refused with a problem, never a crash."""
import pytest

from tests.conftest import ROOT
from workflows.definitions import deploy_xml
from workflows.encoding import to_utf8
from workflows.labels import process_label
from workflows.validation import load_forms, validate, validate_files

FORMS = load_forms(ROOT / "bpmn" / "forms")
HANDOVER = (ROOT / "bpmn" / "handover.bpmn").read_bytes()
TEXT = HANDOVER.decode("utf-8")
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
assert TEXT.startswith(DECLARATION) and "移交" in TEXT  # it has Chinese to lose


def saved_as(codec, declared=None, bom=b""):
    text = TEXT.replace(DECLARATION,
                        f'<?xml version="1.0" encoding="{declared or codec}"?>', 1)
    return bom + text.encode(codec)


ENCODED = {
    "GBK": saved_as("gbk"),
    "GB18030": saved_as("gb18030"),
    "GB2312 declared, GBK bytes": saved_as("gbk", declared="GB2312"),
    "UTF-16 with its byte-order mark": saved_as("utf-16"),
    "UTF-16BE without a mark": saved_as("utf-16-be", declared="UTF-16"),
}


@pytest.mark.parametrize("name", ENCODED)
def test_other_encodings_become_the_same_utf8_text(name):
    # the very bytes of the UTF-8 file: every line where it was, the Chinese names intact
    assert to_utf8(ENCODED[name]) == HANDOVER


@pytest.mark.parametrize("name", ENCODED)
def test_they_validate_like_the_utf8_file(name):
    assert validate(ENCODED[name], FORMS, "handover.bpmn", deployed={}) == \
        validate(HANDOVER, FORMS, "handover.bpmn", deployed={}) == []
    assert validate_files([(ENCODED[name], "handover.bpmn")], FORMS, deployed={}) == []


def test_utf8_files_are_left_byte_for_byte():
    assert to_utf8(HANDOVER) == HANDOVER
    undeclared = HANDOVER.replace(DECLARATION.encode(), b"", 1)
    assert to_utf8(undeclared) == undeclared


def test_a_gbk_file_deploys_with_its_chinese_names(app):
    definition = deploy_xml(ENCODED["GBK"], "handover.bpmn", ROOT / "bpmn" / "forms")[0]
    assert definition.bpmn_xml == TEXT
    assert process_label("handover", "zh_CN") == "放款后交接"
    again = deploy_xml(HANDOVER, "handover.bpmn", ROOT / "bpmn" / "forms")[0]
    assert again.process_key == definition.process_key == "handover"


@pytest.mark.parametrize("data, expected", [
    # GBK bytes with nothing saying so: XML's default is UTF-8
    (TEXT.replace(DECLARATION, "", 1).encode("gbk"), "not UTF-8"),
    (TEXT.replace(DECLARATION, '<?xml version="1.0"?>', 1).encode("gbk"), "not UTF-8"),
    # declared GBK but cut short, and an encoding nobody knows
    (saved_as("gbk")[:300], "not well-formed"),
    (saved_as("gbk", declared="KLINGON-1"), "not UTF-8"),
])
def test_what_cannot_be_read_is_a_problem_not_a_crash(data, expected):
    problems = validate(data, FORMS, "handover.bpmn", deployed={})
    assert [p.code for p in problems] == ["not_xml"]
    assert expected in problems[0].message
