"""The template library: render, save a version, send (issue 16).

Every outgoing text (SMS to the outbox, printable letter) is rendered from the version of its
template in use — the highest — and recorded as a SentNotice with that version, the values
and the rendered text, audited as `notice.sent`. Process owners save new versions; a text
whose placeholders are unknown, missing or malformed is refused at save time, so rendering a
saved template never fails.
"""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from audit.operations import record
from cases.models import Loan
from extensions import db

from i18n import N_
from notices import placeholders as ph
from notices.defaults import DEFAULTS
from notices.models import NoticeTemplate, NoticeTemplateVersion, SentNotice
from workflows import clock
from workflows.errors import Conflict, InvalidData, NotFound
from workflows.services import service

LANGUAGES = ("zh_CN", "en")
SMS_MAX = 300  # characters of the text as written (placeholders count as their names)
SUBJECT_MAX = 200
BODY_MAX = 20000
COMMENT_MAX = 2000


# ---------------------------------------------------------------- the templates

def ensure_templates():
    """Write version 1 of every shipped template that has no row yet. Idempotent; two
    requests doing it at once: the loser's savepoint rolls back and it reads the winner's."""
    have = set(db.session.scalars(select(NoticeTemplate.key)))
    for key, (channel, stage, subject_zh, subject_en, body_zh, body_en) in DEFAULTS.items():
        if key in have:
            continue
        try:
            with db.session.begin_nested():
                template = NoticeTemplate(key=key, channel=channel, stage=stage,
                                          created_at=clock.now())
                db.session.add(template)
                db.session.flush()
                db.session.add(NoticeTemplateVersion(
                    template_id=template.id, version=1, subject_zh=subject_zh,
                    subject_en=subject_en, body_zh=body_zh, body_en=body_en,
                    comment="", created_at=clock.now()))
                db.session.flush()
        except IntegrityError:
            continue  # written meanwhile by another request
        record("notice.template_saved", data={"key": key, "version": 1,
                                              "comment": "shipped text"})


def template(key):
    ensure_templates()
    row = db.session.scalar(select(NoticeTemplate).where(NoticeTemplate.key == key))
    if row is None:
        raise NotFound(f"no notice template {key}", code="not_found")
    return row


def current_version(key):
    row = template(key)
    return db.session.scalar(
        select(NoticeTemplateVersion).where(NoticeTemplateVersion.template_id == row.id)
        .order_by(NoticeTemplateVersion.version.desc()).limit(1))


def get_version(key, number):
    row = template(key)
    version = db.session.scalar(select(NoticeTemplateVersion).where(
        NoticeTemplateVersion.template_id == row.id, NoticeTemplateVersion.version == number))
    if version is None:
        raise NotFound(f"template {key} has no version {number}", code="not_found")
    return version


def listing():
    """Every template with its version in use, by stage then key."""
    ensure_templates()
    latest = (select(NoticeTemplateVersion.template_id,
                     func.max(NoticeTemplateVersion.version).label("version"))
              .group_by(NoticeTemplateVersion.template_id).subquery())
    rows = db.session.execute(
        select(NoticeTemplate, NoticeTemplateVersion)
        .join(latest, latest.c.template_id == NoticeTemplate.id)
        .join(NoticeTemplateVersion, (NoticeTemplateVersion.template_id == NoticeTemplate.id)
              & (NoticeTemplateVersion.version == latest.c.version))).all()
    return rows


# ---------------------------------------------------------------- saving a version

def problems(key, channel, subject_zh, subject_en, body_zh, body_en, comment=None):
    """Field errors ({field: [N_ text with values]}) of a new version of template `key`."""
    errors = {}

    def add(field, message, **values):
        errors.setdefault(field, []).append((message, values))

    for field, text in (("body_zh", body_zh), ("body_en", body_en)):
        if not (text or "").strip():
            add(field, N_("The text cannot be empty."))
            continue
        if len(text) > BODY_MAX:
            add(field, N_("At most %(count)s characters."), count=BODY_MAX)
        if channel == "sms" and len(text) > SMS_MAX:
            add(field, N_("An SMS is at most %(count)s characters; this one has %(length)s."),
                count=SMS_MAX, length=len(text))
        for message, values in ph.check(key, text):
            add(field, message, **values)
    for field, text in (("subject_zh", subject_zh), ("subject_en", subject_en)):
        text = text or ""
        if len(text) > SUBJECT_MAX:
            add(field, N_("At most %(count)s characters."), count=SUBJECT_MAX)
        if channel == "letter" and not text.strip():
            add(field, N_("A letter needs a subject."))
        for message, values in ph.check(key, text, need_required=False):
            add(field, message, **values)
    if comment is not None:
        if not comment.strip():
            add("comment", N_("Say what changed and why."))
        elif len(comment) > COMMENT_MAX:
            add("comment", N_("At most %(count)s characters."), count=COMMENT_MAX)
    return errors


def _localized(errors):
    from flask_babel import gettext
    return {field: [gettext(message, **values) for message, values in items]
            for field, items in errors.items()}


def save_version(key, subject_zh, subject_en, body_zh, body_en, comment, actor,
                 base_version=None):
    """A new version (the highest + 1) of template `key`; flushes, the caller commits.
    `base_version`: the version the editor started from; a newer one saved meanwhile is a
    Conflict (nothing lost: the editor keeps the text). Bad text: InvalidData with field
    errors in the user's language."""
    row = template(key)
    subject_zh, subject_en = (subject_zh or "").strip(), (subject_en or "").strip()
    body_zh, body_en = (body_zh or "").replace("\r\n", "\n"), (body_en or "").replace("\r\n", "\n")
    comment = (comment or "").strip()
    errors = problems(key, row.channel, subject_zh, subject_en, body_zh, body_en, comment)
    if errors:
        raise InvalidData("the template has errors", code="invalid",
                          field_errors=_localized(errors))
    latest = db.session.scalar(select(func.max(NoticeTemplateVersion.version))
                               .where(NoticeTemplateVersion.template_id == row.id)) or 0
    if base_version is not None and int(base_version) != latest:
        raise Conflict(f"version {latest} was saved meanwhile", code="conflict")
    version = NoticeTemplateVersion(
        template_id=row.id, version=latest + 1, subject_zh=subject_zh, subject_en=subject_en,
        body_zh=body_zh, body_en=body_en, comment=comment,
        created_by_id=getattr(actor, "id", None), created_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(version)
            db.session.flush()
    except IntegrityError:
        raise Conflict(f"version {latest + 1} was saved meanwhile", code="conflict") from None
    record("notice.template_saved", actor=actor,
           data={"key": key, "version": version.version, "comment": comment})
    return version


# ---------------------------------------------------------------- rendering and sending

def raw_values(loan, values=None, today=None):
    raw = ph.case_values(loan, today or clock.today())
    raw.update({k: v for k, v in (values or {}).items() if v is not None})
    return raw


def preview_values(key, loan):
    """The case's values for a preview, and the placeholders only a sending step can give
    (a guarantor's name, an amount, a deadline) filled with their examples; (raw, the names
    shown as examples)."""
    raw = raw_values(loan)
    samples = ph.sample_values()
    examples = [name for name in ph.allowed(key)
                if raw.get(name) is None and not name.startswith("lender_")]
    raw.update({name: samples[name] for name in examples})
    return raw, examples


def render_version(version, raw, language):
    """(subject, body, formatted values) of one version for `language`."""
    key = version.template.key
    values = ph.formatted(key, raw, language)
    zh = language == "zh_CN"
    subject = ph.fill(version.subject_zh if zh else version.subject_en, values)
    body = ph.fill(version.body_zh if zh else version.body_en, values)
    return subject, body, values


def render(key, loan, values=None, language="zh_CN", version=None):
    """The text of template `key` (the version in use, or `version`) for `loan`."""
    version = version or current_version(key)
    subject, body, formatted = render_version(version, raw_values(loan, values), language)
    return {"subject": subject, "body": body, "values": formatted, "version": version}


def render_sample(version, language):
    return render_version(version, ph.sample_values(), language)


def send(key, loan, values=None, recipient="", actor=None, instance_id=None, task_id=None,
         language="zh_CN"):
    """Render the version in use and record it sent: a SentNotice (an SMS goes to the outbox
    too, to `recipient`, a phone number) and the audit event. Flushes; the caller commits."""
    from notifications.outbox import enqueue
    version = current_version(key)
    channel = version.template.channel
    subject, body, formatted = render_version(version, raw_values(loan, values), language)
    if instance_id is None:
        from workflows.service import _RUNNING
        instance_id = _RUNNING.get()
    notification = None
    if channel == "sms":
        notification = enqueue(loan.id, recipient, body, channel="sms")
    notice = SentNotice(loan_id=loan.id, template_version_id=version.id, template_key=key,
                        language=language, channel=channel, recipient=str(recipient)[:200],
                        subject=subject[:200], body=body, values=formatted,
                        notification_id=notification.id if notification else None,
                        instance_id=instance_id, task_id=task_id,
                        sent_by_id=getattr(actor, "id", None), sent_at=clock.now())
    db.session.add(notice)
    db.session.flush()
    record("notice.sent", actor=actor, case_id=loan.id, instance_id=instance_id,
           task_id=task_id, data={"notice_id": notice.id, "template": key,
                                  "version": version.version, "channel": channel,
                                  "recipient": notice.recipient, "subject": subject,
                                  "body": body, "notification_id": notice.notification_id})
    return notice


def borrower_phone(loan):
    borrower = loan.borrower
    return borrower.phones[0] if borrower is not None and borrower.phones else ""


def borrower_address(loan):
    borrower = loan.borrower
    addresses = borrower.addresses if borrower is not None and borrower.addresses else []
    first = addresses[0] if addresses else ""
    if isinstance(first, dict):
        first = first.get("address") or first.get("value") or ""
    return str(first or "")


def letter_recipient(name, address):
    return f"{name}（{address}）" if address else name


def sent_on_case(loan):
    return db.session.scalars(select(SentNotice).where(SentNotice.loan_id == loan.id)
                              .order_by(SentNotice.sent_at.desc(), SentNotice.id.desc())).all()


# ---------------------------------------------------------------- the BPMN service

def _step(loan, data, bpmn_id):
    """(actor, task id) of the user task `bpmn_id` just completed, or (None, None)."""
    if not bpmn_id:
        return None, None
    from accounts.models import User
    from workflows.models import HumanTask
    username = (data.get("completed_by") or {}).get(bpmn_id)
    actor = User.query.filter_by(username=username).first() if username else None
    task_id = db.session.scalar(
        select(HumanTask.id).where(HumanTask.case_id == loan.id, HumanTask.bpmn_id == bpmn_id,
                                   HumanTask.state == "completed")
        .order_by(HumanTask.id.desc()).limit(1))
    return actor, task_id


@service("send_notice")
def send_notice(data, template, recipient="borrower", values=None, fields=None, after=None):
    """A BPMN service task sends the template it names: `template="closure_invitation"`,
    `recipient` "borrower" (an SMS to the first phone, a letter to the name and address),
    `fields` {placeholder: task-data name} read from the task data (a name missing there
    leaves the placeholder empty, never fails the step), `values` placeholder values the
    diagram computes, `after` the user task whose completer sends it. No phone for an SMS:
    skipped, audited."""
    loan = Loan.query.filter_by(loan_no=data.get("loan_no")).first() \
        if data.get("loan_no") else None
    if loan is None:  # an instance without a case (a diagram tried on its own): nobody to tell
        return {"sent": False, "reason": "no case", "template": template}
    actor, task_id = _step(loan, data, after)
    channel = current_version(template).template.channel
    if recipient != "borrower":
        raise InvalidData(f"unknown recipient kind {recipient}", code="invalid")
    if channel == "sms":
        to = borrower_phone(loan)
        if not to:
            record("notification.skipped", case_id=loan.id,
                   data={"reason": "no phone", "template": template})
            return {"sent": False, "reason": "no phone", "template": template}
    else:
        to = letter_recipient(loan.borrower_name, borrower_address(loan))
    given = {name: data.get(str(source)) for name, source in (fields or {}).items()}
    given.update(values or {})
    notice = send(template, loan, given, to, actor=actor, task_id=task_id)
    data.setdefault("notices_sent", {})[template] = notice.id
    return {"sent": True, "notice_id": notice.id, "template": template,
            "version": notice.template_version.version}
