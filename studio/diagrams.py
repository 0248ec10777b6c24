"""Process studio: where is my case. Each instance's diagram with the path it took (for
everyone who may see the case) and, per process version, the heat map of where running
cases wait, with the list of those cases (process owners and managers).

Views only: the path and the counts come from workflows.progress as plain data."""
from flask import abort, jsonify, render_template
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from accounts.auth import deny, roles_required
from accounts.models import User
from accounts.roles import CASE_READERS
from cases.access import can_view_case
from cases.models import Loan
from extensions import db
from studio import bp
from workflows.labels import label_in, localize_xml
from workflows.models import ProcessDefinition, ProcessInstance
from workflows.progress import diagram_elements, instance_progress, waiting_at, waiting_counts

# Who sees the heat map of a process version and the list of cases waiting at an element.
HEATMAP_ROLES = ("process_owner", "dept_head", "general_manager", "risk_manager", "compliance",
                 "admin")


def case_instances(case_id):
    """The process instances of a case for its page: light rows, no state is loaded."""
    rows = db.session.execute(
        select(ProcessInstance.id, ProcessInstance.status, ProcessInstance.business_key,
               ProcessInstance.started_at, ProcessInstance.completed_at,
               ProcessDefinition.process_key, ProcessDefinition.name, ProcessDefinition.version)
        .join(ProcessDefinition, ProcessInstance.definition_id == ProcessDefinition.id)
        .where(ProcessInstance.case_id == case_id)
        .order_by(ProcessInstance.started_at, ProcessInstance.id)).all()
    return [row._asdict() for row in rows]


def instance_status_labels():
    return {"running": _("running"), "completed": _("completed"), "cancelled": _("cancelled"),
            "error": _("stopped on an error")}


@bp.app_context_processor
def _diagram_helpers():
    return {"case_instances": case_instances, "HEATMAP_ROLES": HEATMAP_ROLES,
            "instance_status_labels": instance_status_labels}


def _definition(key, version):
    definition = db.session.scalar(select(ProcessDefinition).where(
        ProcessDefinition.process_key == key, ProcessDefinition.version == version))
    if definition is None:
        abort(404)
    return definition


@bp.route("/instances/<int:instance_id>/diagram.json")
@login_required
def instance_diagram(instance_id):
    instance = db.session.get(ProcessInstance, instance_id)
    if instance is None:
        abort(404)
    loan = db.session.get(Loan, instance.case_id) if instance.case_id else None
    allowed = (can_view_case(current_user, loan) if loan is not None
               else current_user.has_role(*HEATMAP_ROLES))
    if not allowed:
        deny(current_user, "case")
    definition = instance.definition
    return jsonify({"xml": localize_xml(definition.bpmn_xml), "progress": instance_progress(instance),
                    "process": definition.process_key, "version": definition.version,
                    "status": instance.status})


@bp.route("/processes/<key>/versions/<int:version>/heatmap")
@login_required
@roles_required(*HEATMAP_ROLES)
def heatmap(key, version):
    definition = _definition(key, version)
    counts = waiting_counts(definition)
    elements = diagram_elements(definition)
    rows = sorted(((bpmn_id, label_in(definition, bpmn_id, elements.get(bpmn_id, {}).get("name")),
                    n)
                   for bpmn_id, n in counts.items()), key=lambda r: (-r[2], r[1]))
    return render_template("studio/heatmap.html", definition=definition, counts=counts,
                           rows=rows, total=sum(counts.values()))


@bp.route("/processes/<key>/versions/<int:version>/waiting/<bpmn_id>")
@login_required
@roles_required(*HEATMAP_ROLES)
def waiting(key, version, bpmn_id):
    definition = _definition(key, version)
    element = diagram_elements(definition).get(bpmn_id)
    if element is None:
        abort(404)
    rows = waiting_at(definition, bpmn_id)
    loans = {loan.id: loan for loan in db.session.scalars(
        select(Loan).where(Loan.id.in_({r["case_id"] for r in rows if r["case_id"]})))}
    holders = {user.id: user for user in db.session.scalars(
        select(User).where(User.id.in_({r["holder_id"] for r in rows if r["holder_id"]})))}
    cases = [dict(r, loan=loans.get(r["case_id"]), holder=holders.get(r["holder_id"]))
             for r in rows]
    return render_template("studio/waiting.html", definition=definition, bpmn_id=bpmn_id,
                           element=element, cases=cases,
                           may_open_cases=bool(current_user.roles & CASE_READERS))
