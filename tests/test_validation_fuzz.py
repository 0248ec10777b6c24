"""Any input gives a list of problems, never a crash (issue 15 item 2): the shipped diagrams
mutated thousands of times in all — attributes deleted, ids changed, elements dropped or
duplicated, whitespace inserted, references swapped, tags renamed, texts replaced, the file
truncated, re-encoded or sprinkled with random bytes — and each validation returns Problems
(never the "could not be checked" last resort) within a generous time bound.

Validation needs no database here (deployed={}, the call library holds the shipped files), so
the full run is on SQLite and a short one on PostgreSQL, where it would only repeat itself."""
import copy
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.conftest import ROOT, is_postgres
from workflows.bpmn_xml import FLOW_NODES
from workflows.validation import CallLibrary, Problem, load_forms, validate

PATHS = sorted((ROOT / "bpmn").glob("*.bpmn"))
FILES = [(p.read_bytes(), p.name) for p in PATHS]
FORMS = load_forms(ROOT / "bpmn" / "forms")
LIBRARY = CallLibrary(FILES, database=False)
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
# Generous: the biggest shipped diagram validates in about 0.1 s.
SECONDS = 5
EXAMPLES = {"sqlite": 1000, "postgresql": 80}
# Per example 1 to 6 tree mutations (and a byte one in a quarter): about 3,500 on SQLite.
TAGS = sorted(FLOW_NODES) + ["sequenceFlow", "process", "lane", "bogus", "definitions"]
# Text without what XML cannot hold (control characters, surrogates).
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
WEIRD_IDS = st.sampled_from(["", " ", " start", "end ", "a b", "1x", "start", "end",
                             "flow_start", "handover", "x" * 90, "\t\n", "名字"])


def _elements(root):
    return [el for el in root.iter() if isinstance(el.tag, str)]


def _pick(items, index):
    return items[index % len(items)] if items else None


@st.composite
def tree_mutation(draw):
    """One change to the element tree, as a function of the root."""
    kind = draw(st.sampled_from(["delete_attribute", "change_id", "drop", "duplicate",
                                 "whitespace", "swap_refs", "rename", "text", "move"]))
    i, j = draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000))
    new_id, text = draw(st.one_of(WEIRD_IDS, TEXT)), draw(TEXT)
    tag = draw(st.sampled_from(TAGS))

    def apply(root):
        elements = _elements(root)
        el = _pick(elements, i)
        if el is None:
            return
        if kind == "delete_attribute" and el.attrib:
            del el.attrib[_pick(sorted(el.attrib), j)]
        elif kind == "change_id":
            el.set("id", new_id)
        elif kind == "drop" and el.getparent() is not None:
            el.getparent().remove(el)
        elif kind == "duplicate" and el.getparent() is not None:
            el.addnext(copy.deepcopy(el))
        elif kind == "whitespace":
            if el.attrib:
                name = _pick(sorted(el.attrib), j)
                value = el.get(name)
                at = j % (len(value) + 1)
                el.set(name, value[:at] + _pick([" ", "\t", "\n", "  "], i) + value[at:])
            else:
                el.text = " " + (el.text or "") + "\n"
        elif kind == "swap_refs":
            refs = [(e, a) for e in elements for a in ("sourceRef", "targetRef", "default",
                                                       "attachedToRef", "calledElement",
                                                       "processRef") if e.get(a) is not None]
            if len(refs) >= 2:
                (e1, a1), (e2, a2) = _pick(refs, i), _pick(refs, j)
                v1, v2 = e1.get(a1), e2.get(a2)
                e1.set(a1, v2)
                e2.set(a2, v1)
        elif kind == "rename" and el.getparent() is not None:
            el.tag = f"{{{BPMN}}}{tag}" if j % 3 else f"{{urn:other}}{tag}"
        elif kind == "text":
            el.text = text
        elif kind == "move" and el.getparent() is not None:
            target = _pick(elements, j)
            if target is not None and el not in target.iterancestors() and target is not el:
                target.append(el)
    return apply


@st.composite
def byte_mutation(draw):
    """One change to the bytes of the file, as a function of them."""
    kind = draw(st.sampled_from(["truncate", "insert", "overwrite", "encode"]))
    at = draw(st.floats(0, 1))
    junk = draw(st.binary(min_size=1, max_size=8))
    codec = draw(st.sampled_from(["GBK", "GB18030", "UTF-16", "latin-1", "bogus-enc"]))

    def apply(data):
        pos = int(at * len(data))
        if kind == "truncate":
            return data[:pos]
        if kind == "insert":
            return data[:pos] + junk + data[pos:]
        if kind == "overwrite":
            return data[:pos] + junk + data[pos + len(junk):]
        head = data.replace(b'encoding="UTF-8"', f'encoding="{codec}"'.encode(), 1)
        try:
            return head.decode("utf-8").encode(codec)
        except (LookupError, UnicodeError):
            return head  # declares an encoding it is not in (or one that does not exist)
    return apply


def mutated(index, tree_changes, byte_changes):
    data, name = FILES[index % len(FILES)]
    if tree_changes:
        root = etree.fromstring(data)
        for change in tree_changes:
            change(root)
        data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    for change in byte_changes:
        data = change(data)
    return data, name


def assert_problems(data, name):
    start = time.perf_counter()
    problems = validate(data, FORMS, name, deployed={}, library=LIBRARY)
    seconds = time.perf_counter() - start
    assert isinstance(problems, list)
    assert all(isinstance(p, Problem) and p.code and p.message for p in problems), problems
    last_resort = [p for p in problems if "could not be checked" in p.message]
    assert not last_resort, last_resort[0].message
    assert seconds < SECONDS, (name, seconds)


def test_mutated_diagrams_give_problems_never_a_crash(app):
    examples = EXAMPLES["postgresql" if is_postgres(app) else "sqlite"]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(FILES) - 1),
           st.lists(tree_mutation(), min_size=1, max_size=6),
           st.lists(byte_mutation(), max_size=1))
    def check(index, tree_changes, byte_changes):
        # Most examples stay well-formed, so the checks past parsing are exercised.
        assert_problems(*mutated(index, tree_changes, byte_changes if index % 4 == 0 else []))

    check()


def test_every_shipped_diagram_mutated_once_each_way(app):
    """Deterministic floor under the random run: each tag dropped, duplicated and stripped
    of its id, in every shipped diagram."""
    for data, name in FILES:
        root = etree.fromstring(data)
        for n, el in enumerate(_elements(root)):
            if n % 40:  # a sample of the elements keeps this quick
                continue
            for change in ("drop", "duplicate", "no_id"):
                copy_root = etree.fromstring(data)
                twin = _elements(copy_root)[n]
                if twin.getparent() is None:
                    continue
                if change == "drop":
                    twin.getparent().remove(twin)
                elif change == "duplicate":
                    twin.addnext(copy.deepcopy(twin))
                else:
                    twin.attrib.pop("id", None)
                assert_problems(etree.tostring(copy_root), name)
