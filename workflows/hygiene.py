"""Modelling hygiene: what may deploy but should be fixed (warnings, not problems)."""
from workflows.bpmn_xml import HUMAN_TASKS, local
from workflows.calls import BPMN_NS, parse_xml
from workflows.problems import Problem


def warnings(xml) -> list[Problem]:
    """What may deploy but should be fixed: a process or a task people do without a Chinese
    name (workflows/labels.py) is shown in English on the Chinese pages."""
    from workflows.labels import ZH_PROPERTY, zh_name
    root = parse_xml(xml.encode("utf-8") if isinstance(xml, str) else xml)
    if root is None:  # validate() reports it
        return []
    found = []
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        pid = process.get("id")
        hint = f"Add the Chinese name (property {ZH_PROPERTY}) in the side panel"
        if not zh_name(process):
            found.append(Problem(pid, pid, "name_zh_missing", "the process has no Chinese name",
                                 hint, process.sourceline))
        for el in process.iter():
            if local(el) in HUMAN_TASKS and not zh_name(el):
                found.append(Problem(el.get("id"), pid, "name_zh_missing",
                                     "the task has no Chinese name", hint, el.sourceline))
    return found
