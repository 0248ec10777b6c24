"""process labels: process and step names in both languages, read from the BPMN at deploy

Issue 13 item 5: the BPMN `name` is English and a `name_zh_CN` spiffworkflow property holds
the Chinese (workflows/labels.py). Deploy stores both on the version; existing versions are
filled here from their stored XML (a version whose XML does not parse keeps NULL, and the
readers fall back to the English name).

Revision ID: 0017
Revises: 0016
"""
import json

from alembic import op
import sqlalchemy as sa
from lxml import etree


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NOT_STEPS = {"process", "lane", "laneSet", "participant", "collaboration", "definitions",
             "message", "signal", "error", "escalation", "linkEventDefinition"}


def _zh(el):
    # A copy of workflows.labels as of this revision: migrations do not import app code.
    for prop in el.findall(f"{{{BPMN}}}extensionElements/{{{SPIFF}}}properties/"
                           f"{{{SPIFF}}}property"):
        if prop.get("name") == "name_zh_CN" and (prop.get("value") or "").strip():
            return prop.get("value").strip()
    return ""


def _pair(el):
    return {"en": (el.get("name") or "").strip(), "zh_CN": _zh(el)}


def _labels(xml, process_id):
    try:
        root = etree.fromstring(xml.encode("utf-8"),
                                etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError):
        return None
    for process in root.iter(f"{{{BPMN}}}process"):
        if process.get("id") != process_id:
            continue
        steps = {}
        for el in process.iter():
            if not isinstance(el.tag, str):
                continue
            name = etree.QName(el)
            if name.namespace != BPMN or name.localname in NOT_STEPS:
                continue
            if el.get("id") and (el.get("name") or _zh(el)):
                steps[el.get("id")] = _pair(el)
        return {"process": _pair(process), "steps": steps}
    return None


def upgrade():
    with op.batch_alter_table('process_definitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('labels', sa.JSON(), nullable=True))
    bind = op.get_bind()
    table = sa.table('process_definitions', sa.column('id', sa.Integer),
                     sa.column('labels', sa.JSON))
    rows = bind.execute(sa.text(
        "SELECT id, process_key, bpmn_xml FROM process_definitions")).fetchall()
    for row in rows:
        labels = _labels(row.bpmn_xml or "", row.process_key)
        if labels is not None:
            bind.execute(table.update().where(table.c.id == row.id).values(labels=labels))


def downgrade():
    with op.batch_alter_table('process_definitions', schema=None) as batch_op:
        batch_op.drop_column('labels')
