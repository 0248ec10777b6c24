"""Names of processes and of their steps in both languages, read from the BPMN.

Convention: the BPMN `name` attribute is the English name; the Chinese one is a property of
the same element,

    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="name_zh_CN" value="移交贷款档案" />
    </spiffworkflow:properties></bpmn:extensionElements>

on the process element and on any flow node or sequence flow. Deploy stores what
`extract_labels` finds on the definition (`process_definitions.labels`); the readers below
take it from the latest version through the memoized definition cache, so a page of rows
costs no query per row.
"""
from lxml import etree

from i18n import current_language

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
ZH_PROPERTY = "name_zh_CN"
# Elements whose names are steps people may see (inbox, diagram legend, histories).
_NOT_STEPS = {"process", "lane", "laneSet", "participant", "collaboration", "definitions",
              "message", "signal", "error", "escalation", "linkEventDefinition"}


def _local(el):
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def zh_name(el):
    """The element's name_zh_CN property, or None."""
    for prop in el.findall(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/"
                           f"{{{SPIFF_NS}}}property"):
        if prop.get("name") == ZH_PROPERTY and (prop.get("value") or "").strip():
            return prop.get("value").strip()
    return None


def _pair(el):
    return {"en": (el.get("name") or "").strip(), "zh_CN": zh_name(el) or ""}


def extract_labels(xml) -> dict:
    """{process id: {"process": {"en", "zh_CN"}, "steps": {bpmn id: {"en", "zh_CN"}}}} of
    one BPMN document; {} when it does not parse. Steps of embedded subprocesses are the
    enclosing process's steps (their tasks run in its instances)."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError):
        return {}
    result = {}
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        steps = {}
        for el in process.iter():
            kind = _local(el)
            if kind is None or kind in _NOT_STEPS or etree.QName(el).namespace != BPMN_NS:
                continue
            if el.get("id") and (el.get("name") or zh_name(el)):
                steps[el.get("id")] = _pair(el)
        result[process.get("id")] = {"process": _pair(process), "steps": steps}
    return result


def labels_for(xml, process_id, called_xml=()) -> dict:
    """The labels stored on one process's definition: its own, plus the steps of the
    processes it calls (their tasks run in its instances) where its own have none."""
    own = extract_labels(xml).get(process_id) or {"process": {"en": "", "zh_CN": ""},
                                                  "steps": {}}
    steps = {}
    for document in called_xml:
        for labels in extract_labels(document).values():
            steps.update(labels["steps"])
    steps.update(own["steps"])
    return {"process": own["process"], "steps": steps}


def prettify(code):
    """'risk_warning' -> 'Risk warning': the last resort, for English pages only."""
    text = str(code or "").replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def _pick(pair, locale):
    pair = pair or {}
    if locale == "zh_CN":
        return pair.get("zh_CN") or pair.get("en") or ""
    return pair.get("en") or ""


def _labels(process_key):
    # Imported here: definitions imports validation, which may import this module.
    from workflows.definitions import latest_labels
    return latest_labels(process_key) if process_key else {}


def process_label(process_key, locale=None):
    """The process's name in `locale` (default: the reader's): the BPMN's Chinese or English
    name, else the stored definition name, else the key prettified."""
    locale = locale or current_language()
    name = _pick(_labels(process_key).get("process"), locale)
    if name:
        return name
    from workflows.definitions import latest_definition
    definition = latest_definition(process_key) if process_key else None
    if definition is not None and definition.name and definition.name != process_key:
        return definition.name
    return prettify(process_key)


def step_label(process_key, bpmn_id, fallback_name=None, locale=None):
    """A step's name in `locale`: from the BPMN of the latest version, else `fallback_name`
    (the English name stored on the task), else the id prettified."""
    locale = locale or current_language()
    steps = _labels(process_key).get("steps") or {}
    return _pick(steps.get(bpmn_id), locale) or (fallback_name or "").strip() \
        or prettify(bpmn_id)


def names_in(process_key, bpmn_id, fallback_name, locales):
    """({locale: process name}, {locale: step name}) for several languages with one look-up of
    the definition (the API's task answers carry both)."""
    labels = _labels(process_key)
    steps = labels.get("steps") or {}
    process = {lang: _pick(labels.get("process"), lang) or process_label(process_key, lang)
               for lang in locales}
    step = {lang: _pick(steps.get(bpmn_id), lang) or (fallback_name or "").strip()
            or prettify(bpmn_id) for lang in locales}
    return process, step


def process_choices(process_keys, locale=None):
    """[(key, label)] sorted by label, for a select."""
    return sorted(((key, process_label(key, locale)) for key in process_keys),
                  key=lambda pair: pair[1])


def label_in(definition, bpmn_id, fallback_name=None, locale=None):
    """A step's name from one given version (the heat map of an older version)."""
    locale = locale or current_language()
    steps = (definition.labels or {}).get("steps") or {}
    return _pick(steps.get(bpmn_id), locale) or (fallback_name or "").strip() \
        or prettify(bpmn_id)


def localize_xml(xml, locale=None):
    """The diagram with its names in `locale` (the viewer draws the `name` attributes):
    in zh_CN each element's name_zh_CN, a pool the name of its process. Unchanged in English
    or when it does not parse."""
    locale = locale or current_language()
    if locale != "zh_CN":
        return xml
    raw = xml.encode("utf-8") if isinstance(xml, str) else xml
    try:
        root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError):
        return xml
    processes = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or etree.QName(el).namespace != BPMN_NS:
            continue
        zh = zh_name(el)
        if zh:
            el.set("name", zh)
            if _local(el) == "process":
                processes[el.get("id")] = zh
    for participant in root.iter(f"{{{BPMN_NS}}}participant"):
        if participant.get("processRef") in processes:
            participant.set("name", processes[participant.get("processRef")])
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True).decode("utf-8")


class ProcessLabels:
    """A read-only {process key: name in the reader's language} of the deployed processes,
    for code that looks names up in a table (audit histories, search results)."""

    def _keys(self):
        from workflows.definitions import deployed_keys
        return deployed_keys()

    def __contains__(self, key):
        return isinstance(key, str) and key in self._keys()

    def __getitem__(self, key):
        if key not in self:
            raise KeyError(key)
        return process_label(key)

    def get(self, key, default=None):
        return process_label(key) if key in self else default

    def __iter__(self):
        return iter(sorted(self._keys()))

    def __len__(self):
        return len(self._keys())


PROCESS_LABELS = ProcessLabels()
