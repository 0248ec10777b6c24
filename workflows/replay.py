"""Replay before deploy: run the recorded history of cases on a draft version of their process
and report, per case, where the new version diverges.

What is replayed, for each chosen instance: a fresh workflow of the draft's spec (parsed and
validated as deploy would) is started with the instance's start data at the time it started;
then the instance's audit events, in order, each at its recorded time (the clock is moved
there, so `today()`, due dates and timers see the day it happened): `task.completed` completes
the READY user task of the same BPMN id with the same submitted data (and the same
`completed_by`), `message.delivered` delivers the same message and payload, `timer.fired`
(those of one sweep together) fires the timers that fired. Scripts and conditions run in the
sandbox as always.

Service tasks replay their recorded effect: the data change each one made in the original run
(read from the instance's own state, where every completed task keeps its data) is applied
again and its result returned, so a replay sees the DPD the case had *then*, not today's, and
writes nothing. A service task the original never ran this often (new in the draft, or on a
path the old version did not take) runs the real operation, and the case notes it. Whatever
runs, each case replays inside a savepoint that is always rolled back, with the session's
pending audit events restored: a replay leaves the database exactly as it found it.

Outcome per case: "identical", "diverges" (the first divergence, with a reason whose code and
values say what happened) or "fails" (a script or condition raising, the engine refusing);
one case failing never stops the others.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy import select
from SpiffWorkflow.bpmn.specs.mixins import (ExclusiveGatewayMixin, InclusiveGatewayMixin,
                                             StartEventMixin)
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from accounts.models import User, utc
from audit.models import AuditEvent
from extensions import db
from forms.builder import api_formdata, build_form_class
from i18n import N_
from workflows import clock
from workflows import service as facade
from workflows.calls import CallLibrary, resolve_calls
from workflows.clock import BEIJING
from workflows.definitions import task_properties
from workflows.encoding import to_utf8
from workflows.engine import load_state, parse_processes, serializer
from workflows.labels import labels_for, prettify
from workflows.limits import engine_budget
from workflows.models import HumanTask, ProcessDefinition, ProcessInstance
from workflows.scripting import RestrictedEnvironment, SandboxedScriptEngine
from workflows.services import REGISTRY
from workflows.validation import deployed_owners, validate

# Running instances replayed at most per run (the oldest first); the rest are counted.
RUNNING_LIMIT = 500
COMPLETED_LIMIT = 500
REPLAYED_ACTIONS = ("task.completed", "message.delivered", "timer.fired")
GATEWAYS = (ExclusiveGatewayMixin, InclusiveGatewayMixin, EventBasedGateway)

# What each divergence or failure says, as English templates (translated when shown).
REASONS = {
    "step_removed": N_("Step %(step)s, which this case reached, no longer exists in the new "
                       "version."),
    "gateway": N_("At %(gateway)s the new version goes to %(actual)s instead of "
                  "%(expected)s; it then waits at %(waiting)s."),
    "new_task": N_("The new version asks for %(step)s, which this case never had; the case "
                   "went on with %(expected)s."),
    "not_reached": N_("The new version does not reach %(step)s (done in this case); it waits "
                      "at %(waiting)s."),
    "field_required": N_("Step %(step)s: field %(field)s is now required and the recorded "
                         "data lacks it."),
    "field_invalid": N_("Step %(step)s: the recorded value of field %(field)s is no longer "
                        "accepted: %(error)s"),
    "message_not_awaited": N_("Message %(message)s (received on %(at)s) is no longer awaited; "
                              "the new version waits at %(waiting)s."),
    "timer_not_awaited": N_("Timer %(timer)s (fired on %(at)s) is no longer awaited; the new "
                            "version waits at %(waiting)s."),
    "timer_later": N_("Timer %(timer)s fired on %(at)s; in the new version it is due only on "
                      "%(due)s."),
    "ended_early": N_("The new version ends before %(step)s."),
    "not_ended": N_("This case has ended, but in the new version it still waits at "
                    "%(waiting)s."),
    "waits_elsewhere": N_("The case waits at %(expected)s; in the new version it waits at "
                          "%(waiting)s."),
    "events_differ": N_("The case waits for %(expected)s; in the new version for %(actual)s."),
    "script_failed": N_("%(step)s fails in the new version: %(error)s"),
    "error": N_("The replay failed: %(error)s"),
}
NOTHING = N_("nothing")
ENDED = N_("the end of the process")


class DraftInvalid(Exception):
    """The draft would not deploy: its problems (workflows.validation.Problem)."""

    def __init__(self, problems):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass
class Draft:
    """A draft parsed as deploy would: the specs of its processes, its forms and names."""
    filename: str
    specs: dict            # process id -> (spec, subprocess specs)
    forms: dict            # form key -> spec
    labels: dict           # process id -> labels (workflows.labels.labels_for)

    @property
    def process_keys(self):
        return sorted(self.specs)


def load_draft(xml, forms, filename, *, check=True) -> Draft:
    """Validate and parse a draft diagram with its forms (form key -> spec); raises
    DraftInvalid with every problem, as deploy would refuse it."""
    xml = xml.encode("utf-8") if isinstance(xml, str) else to_utf8(xml)
    library = CallLibrary()
    if check:
        problems = validate(xml, forms, filename, deployed=deployed_owners(), library=library)
        if problems:
            raise DraftInvalid(problems)
    called = resolve_calls(xml, library).documents
    parsed = parse_processes(xml, filename, [(d.xml, d.filename) for d in called])
    # A called process deployed earlier brings its pinned forms (as deploy does).
    all_forms = {key: spec for d in called if d.forms for key, spec in d.forms.items()}
    all_forms.update(forms or {})
    specs = {}
    for process_id, (spec, subs) in parsed.items():
        # Round-tripped through the serializer: the objects deployed instances run on.
        specs[process_id] = (serializer.from_dict(serializer.to_dict(spec)),
                             {k: serializer.from_dict(serializer.to_dict(v))
                              for k, v in subs.items()})
    labels = {pid: labels_for(xml, pid, [d.xml for d in called]) for pid in parsed}
    return Draft(filename, specs, all_forms, labels)


def draft_of(definition) -> Draft:
    """A deployed version as a Draft (the migration preview replays cases on its target)."""
    from workflows.engine import _specs
    from workflows.models import FormDefinition
    ids = list((definition.forms or {}).values())
    specs = {f.id: f.spec for f in FormDefinition.query.filter(FormDefinition.id.in_(ids))} \
        if ids else {}
    return Draft(definition.filename, {definition.process_key: _specs(definition)},
                 {key: specs[i] for key, i in (definition.forms or {}).items() if i in specs},
                 {definition.process_key: definition.labels or {}})


# ---------------------------------------------------------------- choosing cases

class UnknownCases(ValueError):
    def __init__(self, tokens):
        super().__init__(", ".join(tokens))
        self.tokens = tokens


def select_instances(process_keys, cases=None, completed=0, limit=RUNNING_LIMIT):
    """(instances to replay, running instances left out by the limit). Default: the running
    instances of the processes, oldest first, at most `limit`, plus the `completed` most
    recently completed. `cases` (loan numbers or case ids) instead: every running or
    completed instance of those cases' processes; raises UnknownCases for tokens that name
    no loan."""
    from cases.models import Loan
    base = (select(ProcessInstance).join(ProcessInstance.definition)
            .where(ProcessDefinition.process_key.in_(list(process_keys))))
    if cases:
        tokens = [str(t).strip() for t in cases if str(t).strip()]
        ids = [int(t) for t in tokens if t.isdigit()]
        found = db.session.execute(select(Loan.id, Loan.loan_no).where(
            Loan.loan_no.in_(tokens) | Loan.id.in_(ids))).all()
        known = {str(i) for i, _no in found} | {no for _i, no in found}
        unknown = [t for t in tokens if t not in known]
        if unknown:
            raise UnknownCases(unknown)
        return db.session.scalars(base.where(
            ProcessInstance.case_id.in_([i for i, _no in found]),
            ProcessInstance.status.in_(("running", "completed", "error")))
            .order_by(ProcessInstance.id)).all(), 0
    running = db.session.scalars(base.where(ProcessInstance.status == "running")
                                 .order_by(ProcessInstance.id).limit(limit + 1)).all()
    more = 0
    if len(running) > limit:
        running = running[:limit]
        more = db.session.scalar(
            select(db.func.count()).select_from(base.where(
                ProcessInstance.status == "running").subquery())) - limit
    done = []
    if completed:
        done = db.session.scalars(base.where(ProcessInstance.status == "completed")
                                  .order_by(ProcessInstance.completed_at.desc(),
                                            ProcessInstance.id.desc())
                                  .limit(min(int(completed), COMPLETED_LIMIT))).all()
    return running + done, more


# ---------------------------------------------------------------- the recorded history

@dataclass
class Step:
    kind: str          # "complete", "message" or "timers"
    at: dt.datetime
    bpmn_id: str = None
    data: dict = None
    username: str = None
    task_id: int = None
    message: str = None
    payload: object = None
    timers: list = field(default_factory=list)


def _histories(instance_ids):
    """{instance id: [Step]} from the audit log, in the order things happened; the timers
    that fired in one sweep of an instance form one step (they fired in one refresh)."""
    events = db.session.execute(
        select(AuditEvent.instance_id, AuditEvent.at, AuditEvent.action, AuditEvent.data,
               AuditEvent.actor_id, AuditEvent.task_id)
        .where(AuditEvent.instance_id.in_(instance_ids),
               AuditEvent.action.in_(REPLAYED_ACTIONS))
        .order_by(AuditEvent.id)).all()
    usernames = dict(db.session.execute(select(User.id, User.username).where(
        User.id.in_({e.actor_id for e in events if e.actor_id}))).all()) if events else {}
    result = {i: [] for i in instance_ids}
    for event in events:
        steps, at, data = result[event.instance_id], utc(event.at), event.data or {}
        if event.action == "task.completed":
            steps.append(Step("complete", at, bpmn_id=data.get("bpmn_id"),
                              data=data.get("data") or {}, task_id=event.task_id,
                              username=usernames.get(event.actor_id)))
        elif event.action == "message.delivered":
            steps.append(Step("message", at, message=data.get("message"),
                              payload=data.get("payload")))
        elif steps and steps[-1].kind == "timers" and steps[-1].at == at:
            steps[-1].timers.append(data.get("bpmn_id"))
        else:
            steps.append(Step("timers", at, timers=[data.get("bpmn_id")]))
    return result


def _form_specs(task_ids):
    """{human task id: the form spec it was completed with}."""
    rows = db.session.scalars(select(HumanTask).where(HumanTask.id.in_(task_ids))).all() \
        if task_ids else []
    return {row.id: row.form_definition.spec for row in rows if row.form_definition}


def _node_id(task):
    spec = task.task_spec
    return getattr(spec, "bpmn_id", None) or spec.name.rsplit(".", 1)[0]


def _gateway_outcomes(workflow):
    """[(gateway id, occurrence, chosen targets)] of the completed gateways, in the order
    they ran; an exclusive gateway keeps only the child it chose."""
    done = [t for t in workflow.get_tasks(state=TaskState.COMPLETED)
            if isinstance(t.task_spec, GATEWAYS)]
    done.sort(key=lambda t: t.last_state_change)
    seen, result = {}, []
    for task in done:
        gateway = task.task_spec.bpmn_id
        targets = tuple(sorted(_node_id(c) for c in task.children
                               if not c.has_state(TaskState.MAYBE | TaskState.LIKELY
                                                   | TaskState.CANCELLED)))
        result.append((gateway, seen.get(gateway, 0), targets))
        seen[gateway] = seen.get(gateway, 0) + 1
    return result


def _service_effects(workflow):
    """{(process, bpmn id): deque of (updates, deletions, result variable, result)}: what
    each completed service task changed in its data, in the order they ran."""
    done = [t for t in workflow.get_tasks(state=TaskState.COMPLETED)
            if isinstance(t.task_spec, ServiceTask)]
    done.sort(key=lambda t: t.last_state_change)
    effects = {}
    for task in done:
        before = task.parent.data if task.parent is not None else {}
        updates = {k: v for k, v in task.data.items() if k not in before or before[k] != v}
        deletions = [k for k in before if k not in task.data]
        variable = getattr(task.task_spec, "result_variable", None)
        effects.setdefault((task.workflow.spec.name, task.task_spec.bpmn_id), deque()).append(
            (updates, deletions, variable, task.data.get(variable)))
    return effects


def _open(workflow):
    """(READY user tasks, WAITING events: timers, messages, signals) as sets of BPMN ids.
    Joins waiting for their branches are the engine's bookkeeping, and start events of event
    subprocesses are left out: SpiffWorkflow starts a message-started event subprocess when
    its first message arrives and then connects it to the spec's start for good (the spec
    objects are shared), so whether one already listens, and which joins wait for it,
    depends on what the server process ran before, not on the diagram."""
    ready = {t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY,
                                                             manual=True)}
    waiting = {_node_id(t) for t in workflow.get_tasks(state=TaskState.WAITING)
               if hasattr(t.task_spec, "event_definition")
               and not isinstance(t.task_spec, StartEventMixin)}
    return ready, waiting


def _bpmn_ids(spec, subs):
    return {getattr(ts, "bpmn_id", None) for s in (spec, *subs.values())
            for ts in s.task_specs.values()} - {None}


@dataclass
class Original:
    """What the instance's own state says happened."""
    start_data: dict
    gateways: list
    services: dict
    ready: set
    waiting: set
    completed: bool
    known_ids: set

    @classmethod
    def of(cls, instance):
        workflow = load_state(instance.definition, instance.state_json)
        start = next(t for t in workflow.get_tasks(skip_subprocesses=True)
                     if t.task_spec.name == "Start")
        ready, waiting = _open(workflow)
        return cls(copy.deepcopy(start.data), _gateway_outcomes(workflow),
                   _service_effects(workflow), ready, waiting,
                   instance.status == "completed",
                   _bpmn_ids(workflow.spec, workflow.subprocess_specs))


# ---------------------------------------------------------------- the replay engine

class _ReplayEngine(SandboxedScriptEngine):
    """Service tasks give their recorded effect; one with none left runs the real operation
    (inside the case's savepoint) and is noted in `live`."""

    def __init__(self, effects):
        super().__init__(environment=RestrictedEnvironment(REGISTRY))
        self.effects, self.live = effects, []

    def call_service(self, task, **kwargs):
        queue = self.effects.get((task.workflow.spec.name, task.task_spec.bpmn_id))
        if queue:
            updates, deletions, variable, result = queue.popleft()
            for key in deletions:
                task.data.pop(key, None)
            task.data.update(copy.deepcopy(
                {k: v for k, v in updates.items() if k != variable}))
            return json.dumps(result, default=str)
        self.live.append(task.task_spec.bpmn_id)
        try:
            return self.environment.call_service(task.data, **kwargs)
        except SpiffWorkflowException:
            raise
        except Exception as exc:  # noqa: BLE001 — as a script error, naming the element
            raise self.create_task_exec_exception(task, "", exc) from exc


def _moment(at):
    """The clock at `at` for this replay. A thread-local clock (clock.local_at) when the clock
    module has one; else the process-wide frozen clock."""
    local = getattr(clock, "local_at", None)
    return local(at) if local is not None else clock.frozen_at(at)


class Diverged(Exception):
    def __init__(self, code, **params):
        super().__init__(code)
        self.code, self.params = code, params


def _run(workflow, before=None):
    if before is not None:
        before(workflow)
    workflow.do_engine_steps(will_complete_task=engine_budget())


def _failure(exc):
    task = getattr(exc, "task", None)
    step = _node_id(task) if task is not None else None
    return {"code": "script_failed", "step": step, "error": str(exc).splitlines()[0][:500]}


def _form_problems(old_spec, new_spec, values):
    """[(code, field, error)] that the new form finds in the recorded values and the old one
    did not (a field now required, a choice no longer offered…)."""
    def errors(spec):
        if not spec or not spec.get("fields"):
            return {}
        form = build_form_class(spec)(formdata=api_formdata(values, spec), meta={"csrf": False})
        form.validate()
        return {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    new, old = errors(new_spec), errors(old_spec)
    fields = {f["name"]: f for f in (new_spec or {}).get("fields", [])}
    found = []
    for name, messages in new.items():
        if old.get(name):
            continue  # not the new version's doing (e.g. photos, kept as document ids)
        value = values.get(name)
        missing = value is None or value == "" or value == []
        found.append(("field_required" if missing and name in fields else "field_invalid",
                      name, messages[0] if messages else ""))
    return found


class _CaseReplay:
    def __init__(self, draft, instance, history, form_specs):
        self.draft, self.instance, self.history = draft, instance, history
        self.form_specs = form_specs
        self.original = Original.of(instance)
        spec, subs = draft.specs[instance.definition.process_key]
        self.new_ids = _bpmn_ids(spec, subs)
        self.engine = _ReplayEngine(self.original.services)
        self.workflow = BpmnWorkflow(spec, dict(subs), script_engine=self.engine)
        self.done = 0

    def run(self):
        workflow = self.workflow
        token = facade._RUNNING.set(self.instance.id)
        try:
            with _moment(utc(self.instance.started_at)):
                workflow.get_next_task(state=TaskState.READY).data.update(
                    copy.deepcopy(self.original.start_data))
                _run(workflow)
            for step in self.history:
                if step.kind == "complete" and step.bpmn_id not in self.new_ids:
                    raise Diverged("step_removed", step=step.bpmn_id)
                if workflow.completed:
                    raise Diverged("ended_early", step=self._step_name(step))
                with _moment(step.at):
                    getattr(self, f"_{step.kind}")(step)
                self.done += 1
            self._compare_end()
        finally:
            facade._RUNNING.reset(token)

    @staticmethod
    def _step_name(step):
        return step.bpmn_id if step.kind == "complete" else (
            step.message if step.kind == "message" else ", ".join(step.timers))

    def _waiting(self):
        ready, waiting = _open(self.workflow)
        return sorted(ready) or sorted(waiting)

    def _gateway_difference(self):
        expected = {(g, n): targets for g, n, targets in self.original.gateways}
        for gateway, n, targets in _gateway_outcomes(self.workflow):
            old = expected.get((gateway, n))
            if old is not None and old != targets:
                gone = [t for t in old if t not in self.new_ids]
                if gone:  # the path leads to a step that is no more: say that
                    raise Diverged("step_removed", step=gone[0])
                return {"gateway": gateway, "expected": list(old), "actual": list(targets),
                        "waiting": self._waiting()}
        return None

    def _not_there(self, bpmn_id):
        """Why the recorded step `bpmn_id` cannot be done in the replay."""
        if bpmn_id not in self.new_ids:
            raise Diverged("step_removed", step=bpmn_id)
        self._explain(expected=[bpmn_id], code="not_reached", step=bpmn_id)

    def _explain(self, expected, code, **params):
        gateway = self._gateway_difference()
        if gateway:
            raise Diverged("gateway", **gateway)
        ready, _waiting = _open(self.workflow)
        new = sorted(ready - self.original.known_ids)
        if new:
            raise Diverged("new_task", step=new[0], expected=expected)
        raise Diverged(code, waiting=self._waiting(), **params)

    def _complete(self, step):
        tasks = [t for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)
                 if t.task_spec.bpmn_id == step.bpmn_id]
        if not tasks:
            self._not_there(step.bpmn_id)
        task = tasks[0]
        key = task_properties(task.task_spec).get("formKey")
        new_spec = self.draft.forms.get(key) if key else None
        problems = _form_problems(self.form_specs.get(step.task_id), new_spec, step.data)
        if problems:
            code, name, error = problems[0]
            label = next((f.get("label") for f in new_spec["fields"] if f["name"] == name),
                         None)
            raise Diverged(code, step=step.bpmn_id, field=name, field_label=label,
                           error=error)
        task.data.update(copy.deepcopy(step.data))
        if step.username:
            task.data.setdefault("completed_by", {})[step.bpmn_id] = step.username
        task.run()
        _run(self.workflow)

    def _message(self, step):
        try:
            self.workflow.send_event(BpmnEvent(MessageEventDefinition(step.message),
                                               payload=copy.deepcopy(step.payload)))
        except WorkflowException as exc:
            if "not waiting" not in str(exc):
                raise
            self._explain(expected=[], code="message_not_awaited", message=step.message,
                          at=step.at.isoformat())
        _run(self.workflow)

    def _timers(self, step):
        waiting = self.workflow.get_tasks(state=TaskState.WAITING)
        for bpmn_id in step.timers:
            found = [t for t in waiting if _node_id(t) == bpmn_id]
            if not found:
                self._explain(expected=[], code="timer_not_awaited", timer=bpmn_id,
                              at=step.at.isoformat())
            due = [facade._timer_value(t) for t in found]
            due = [d for d in due if d is not None]
            if due and min(due) >= step.at:
                raise Diverged("timer_later", timer=bpmn_id, at=step.at.isoformat(),
                               due=min(due).isoformat())
        _run(self.workflow, before=lambda wf: wf.refresh_timers())

    def _compare_end(self):
        original, workflow = self.original, self.workflow
        if original.completed and not workflow.completed:
            gateway = self._gateway_difference()
            if gateway:
                raise Diverged("gateway", **gateway)
            raise Diverged("not_ended", waiting=self._waiting())
        if workflow.completed and not original.completed:
            self._explain(expected=sorted(original.ready), code="ended_early",
                          step=", ".join(sorted(original.ready)) or None)
        ready, waiting = _open(workflow)
        if ready != original.ready:
            self._explain(expected=sorted(original.ready), code="waits_elsewhere",
                          expected_steps=sorted(original.ready))
        gateway = self._gateway_difference()
        if gateway:
            raise Diverged("gateway", **gateway)
        if waiting != original.waiting:
            raise Diverged("events_differ", expected=sorted(original.waiting),
                           actual=sorted(waiting))


def _replay_isolated(draft, instance, history, form_specs):
    """One case, in a savepoint that is always rolled back (pending audit events restored)."""
    info = {k: (list(v) if isinstance(v, list) else v) for k, v in db.session.info.items()}
    savepoint = db.session.begin_nested()
    case = None
    try:
        case = _CaseReplay(draft, instance, history, form_specs)
        case.run()
        outcome, reason = "identical", None
    except Diverged as exc:
        outcome, reason = "diverges", {"code": exc.code, **exc.params}
    except Exception as exc:  # noqa: BLE001 — each case alone: a failure is its outcome
        outcome = "fails"
        reason = _failure(exc) if isinstance(exc, SpiffWorkflowException) else \
            {"code": "error", "error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        if savepoint.is_active:
            savepoint.rollback()
        db.session.info.clear()
        db.session.info.update(info)
    return {"instance_id": instance.id, "case_id": instance.case_id,
            "process_key": instance.definition.process_key,
            "version": instance.definition.version, "status": instance.status,
            "outcome": outcome, "reason": reason,
            "steps": len(history), "replayed": case.done if case else 0,
            "live_services": sorted(set(case.engine.live)) if case else []}


def replay(draft, instances, more=0):
    """Replay each instance on the draft; a report with the counts and one row per case."""
    from cases.models import Loan
    ids = [i.id for i in instances]
    histories = _histories(ids) if ids else {}
    task_ids = [s.task_id for h in histories.values() for s in h if s.task_id]
    form_specs = _form_specs(task_ids)
    loans = dict(db.session.execute(select(Loan.id, Loan.loan_no).where(
        Loan.id.in_({i.case_id for i in instances if i.case_id}))).all()) if ids else {}
    rows = []
    for instance in instances:
        if instance.definition.process_key not in draft.specs:
            continue
        row = _replay_isolated(draft, instance, histories.get(instance.id, []), form_specs)
        row["loan_no"] = loans.get(instance.case_id)
        rows.append(row)
    counts = {k: sum(1 for r in rows if r["outcome"] == k)
              for k in ("identical", "diverges", "fails")}
    return {"process_keys": draft.process_keys, "total": len(rows), **counts,
            "more_running": more, "cases": rows}


# ---------------------------------------------------------------- words

def _pick(pair, locale):
    if isinstance(pair, dict):
        return (pair.get(locale) or pair.get("en") or "") if locale == "zh_CN" else \
            (pair.get("en") or "")
    return pair or ""


class Names:
    """Step names in one language: the draft's, then the versions the cases ran on."""

    def __init__(self, draft, definitions=(), locale="en"):
        self.steps, self.locale = {}, locale
        for definition in definitions:
            self.steps.update((definition.labels or {}).get("steps") or {})
        for labels in draft.labels.values():
            self.steps.update(labels.get("steps") or {})

    def __call__(self, bpmn_id):
        if not bpmn_id:
            return "?"
        name = _pick(self.steps.get(bpmn_id), self.locale)
        return f"{name} ({bpmn_id})" if name else (prettify(bpmn_id) if self.locale == "en"
                                                   else bpmn_id)


def describe(reason, names, translate=lambda s: s):
    """The reason in words: `translate` is gettext for the reader's language, `names` a
    Names of the same language."""
    if not reason:
        return ""
    params = dict(reason)
    code = params.pop("code")

    def steps(value):
        if isinstance(value, (list, tuple)):
            return ", ".join(names(v) for v in value) if value else translate(NOTHING)
        return names(value)
    values = {}
    for key, value in params.items():
        if key in ("step", "gateway", "timer"):
            values[key] = steps(value) if value else translate(ENDED)
        elif key in ("expected", "actual", "waiting"):
            values[key] = steps(value)
        elif key == "field":
            values[key] = _pick(params.get("field_label"), names.locale) or value
        elif key in ("at", "due"):
            values[key] = _local_time(value)
        else:
            values[key] = value if value is not None else ""
    if code == "waits_elsewhere":
        values["expected"] = steps(params.get("expected_steps") or [])
    template = REASONS.get(code, REASONS["error"])
    text = translate(template)
    try:
        return text % values
    except (KeyError, ValueError, TypeError):
        return template % {k: values.get(k, "") for k in _placeholders(template)}


def _placeholders(template):
    return re.findall(r"%\((\w+)\)s", template)


def _local_time(value):
    try:
        moment = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value or ""
    return utc(moment).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def definitions_of(instances):
    """The versions the cases ran on (their step names serve removed steps)."""
    return list({i.definition_id: i.definition for i in instances}.values())
