"""Pages of the template library (issue 16): the list, the editor with its version history
and a preview on a real case, old versions (restore = save as a new version), and the PDF of
a letter sent on a case. Process owners edit; other staff may read."""
from types import SimpleNamespace

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import _, lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Optional

from accounts.auth import deny
from audit.operations import record
from cases.access import can_view_case
from cases.models import Loan
from extensions import db
from i18n import current_language
from notices import operations as ops
from notices import placeholders as ph
from notices.defaults import CHANNEL_LABELS, NAMES, STAGE_ORDER, STAGES
from notices.models import SentNotice
from workflows import clock
from workflows.clock import BEIJING
from workflows.errors import Conflict, InvalidData, NotFound

bp = Blueprint("notices", __name__)
EDITOR = "process_owner"


class VersionForm(FlaskForm):
    subject_zh = StringField(_l("Subject (Chinese)"), validators=[Optional()])
    subject_en = StringField(_l("Subject (English)"), validators=[Optional()])
    body_zh = TextAreaField(_l("Text (Chinese)"), validators=[Optional()], render_kw={"rows": 12})
    body_en = TextAreaField(_l("Text (English)"), validators=[Optional()], render_kw={"rows": 12})
    comment = StringField(_l("What changed and why"), validators=[Optional()])
    loan_no = StringField(_l("Preview on the loan"), validators=[Optional()])
    base_version = HiddenField()


class RestoreForm(FlaskForm):
    pass


def template_name(key):
    return NAMES.get(key, key)


@bp.app_context_processor
def notice_helpers():
    def notices_section(loan):
        return ops.sent_on_case(loan)

    def notice_masked(text, loan):
        from pii.rules import mask_text
        return mask_text(text, current_user, loan)
    def notice_code(text):
        """Template syntax inside a sentence, as code."""
        return Markup('<code class="text-body-emphasis">{}</code>').format(text)
    return {"notices_section": notices_section, "notice_template_name": template_name,
            "notice_masked": notice_masked, "notice_code": notice_code,
            "notice_channel_label": lambda code: CHANNEL_LABELS.get(code, code)}


def _may_edit():
    return current_user.has_role(EDITOR)


def _staff_only():
    if not current_user.roles:
        deny(current_user, "role")


def _template_or_404(key):
    try:
        return ops.template(key)
    except NotFound:
        abort(404)


@bp.route("/notices")
@login_required
def index():
    _staff_only()
    rows = ops.listing()
    db.session.commit()  # the shipped templates, written the first time
    people = {u.id: u for u in _users({v.created_by_id for _t, v in rows})}
    by_stage = {}
    for template, version in rows:
        by_stage.setdefault(template.stage, []).append((template, version))
    stages = [(s, STAGES.get(s, s), sorted(by_stage[s], key=lambda r: (r[0].channel, r[0].key)))
              for s in list(STAGE_ORDER) + sorted(set(by_stage) - set(STAGE_ORDER))
              if s in by_stage]
    return render_template("notices/index.html", stages=stages, people=people,
                           may_edit=_may_edit())


def _users(ids):
    from accounts.models import User
    ids = {i for i in ids if i}
    return User.query.filter(User.id.in_(ids)).all() if ids else []


def _preview(key, loan_no, version=None, texts=None):
    """Both languages of the template (the version in use, `version`, or unsaved `texts`)
    rendered on the case `loan_no`; (preview, error)."""
    loan_no = (loan_no or "").strip()
    if not loan_no:
        return None, None
    loan = Loan.query.filter_by(loan_no=loan_no).first()
    if loan is None:
        return None, _("No loan has this number.")
    if not (can_view_case(current_user, loan) or _may_edit()):
        return None, _("You may not see this case.")
    version = version or ops.current_version(key)
    if texts is not None:
        # An unsaved draft: not a row (it must not join the template's versions).
        version = SimpleNamespace(template=version.template, version=version.version, **texts)
    raw, examples = ops.preview_values(key, loan)
    out = {}
    for language in ops.LANGUAGES:
        subject, body, _values = ops.render_version(version, raw, language)
        out[language] = {"subject": _masked(subject, loan), "body": _masked(body, loan)}
    record("notice.previewed", actor=current_user, case_id=loan.id,
           data={"template": key, "version": version.version, "draft": texts is not None})
    db.session.commit()
    return {"loan": loan, "texts": out,
            "examples": [ph.label(name, current_language()) for name in examples]}, None


def _masked(text, loan):
    from pii.rules import mask_text
    return mask_text(text, current_user, loan)


def _placeholder_rows(key):
    language = current_language()
    need = set(ph.required(key))
    configured = ph.lender(language)  # the lender's own name, phone and address
    return [{"name": name, "label": ph.label(name, language), "required": name in need,
             "sample": configured.get(name) or ph.format_value(name, ph.PLACEHOLDERS[name][3],
                                                               language)}
            for name in ph.allowed(key)]


def _editor(key, form, status=200, preview=None, preview_error=None):
    template = _template_or_404(key)
    if not _may_edit():
        for name in ("subject_zh", "subject_en", "body_zh", "body_en"):
            getattr(form, name).render_kw = {**(getattr(form, name).render_kw or {}),
                                             "readonly": True}
    versions = list(reversed(template.versions))
    return render_template(
        "notices/edit.html", template=template, versions=versions, current=versions[0],
        form=form, may_edit=_may_edit(), placeholders=_placeholder_rows(key),
        preview=preview, preview_error=preview_error, sms_max=ops.SMS_MAX,
        people={u.id: u for u in _users({v.created_by_id for v in versions})}), status


@bp.route("/notices/<key>", methods=["GET", "POST"])
@login_required
def edit(key):
    _staff_only()
    if request.method == "POST" and not _may_edit():
        deny(current_user, "role")  # before the lookup: no probing of keys by saving
    template = _template_or_404(key)
    db.session.commit()
    current = ops.current_version(key)
    if request.method == "GET":
        form = VersionForm(formdata=None, obj=current)
        form.base_version.data = str(current.version)
        form.comment.data = ""
        form.loan_no.data = request.args.get("loan_no", "")
        preview, error = _preview(key, form.loan_no.data)
        return _editor(key, form, preview=preview, preview_error=error)
    form = VersionForm()
    if not form.validate():
        return _editor(key, form, 400)
    texts = {name: (getattr(form, name).data or "") for name in
             ("subject_zh", "subject_en", "body_zh", "body_en")}
    if request.form.get("action") == "preview":
        errors = ops.problems(key, template.channel, **texts)
        if errors:
            _errors_to_form(form, ops._localized(errors))
            return _editor(key, form, 400)
        preview, error = _preview(key, form.loan_no.data, texts=texts)
        if preview is None and error is None:
            error = _("Enter a loan number to preview the text on that case.")
        return _editor(key, form, preview=preview, preview_error=error)
    try:
        version = ops.save_version(key, comment=form.comment.data, actor=current_user,
                                   base_version=form.base_version.data or None, **texts)
        db.session.commit()
    except InvalidData as exc:
        db.session.rollback()
        _errors_to_form(form, exc.field_errors)
        return _editor(key, form, 400)
    except Conflict:
        db.session.rollback()
        flash(_("Someone saved a newer version meanwhile. Your text is still below: compare it "
                "with the version in use, then save again."), "error")
        form.base_version.data = str(ops.current_version(key).version)
        return _editor(key, form, 409)
    flash(_("Version %(version)s saved; it is used from now on.", version=version.version),
          "success")
    return redirect(url_for("notices.edit", key=key))


def _errors_to_form(form, field_errors):
    for name, messages in field_errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(field.errors or []) + list(messages)


@bp.route("/notices/<key>/versions/<int:number>")
@login_required
def version(key, number):
    _staff_only()
    _template_or_404(key)
    try:
        row = ops.get_version(key, number)
    except NotFound:
        abort(404)
    current = ops.current_version(key)
    preview, error = _preview(key, request.args.get("loan_no"), version=row)
    return render_template("notices/version.html", template=row.template, version=row,
                           current=current, may_edit=_may_edit(), form=RestoreForm(),
                           preview=preview, preview_error=error,
                           loan_no=request.args.get("loan_no", ""),
                           creator=row.created_by)


@bp.route("/notices/<key>/versions/<int:number>/restore", methods=["POST"])
@login_required
def restore(key, number):
    if not _may_edit():
        deny(current_user, "role")
    _template_or_404(key)
    form = RestoreForm()
    if not form.validate():
        abort(400)
    try:
        row = ops.get_version(key, number)
        saved = ops.save_version(key, row.subject_zh, row.subject_en, row.body_zh, row.body_en,
                                 _("Restored version %(version)s", version=number), current_user)
        db.session.commit()
    except NotFound:
        abort(404)
    except (InvalidData, Conflict):
        db.session.rollback()
        flash(_("This version cannot be restored: its text no longer passes the checks."),
              "error")
        return redirect(url_for("notices.version", key=key, number=number))
    flash(_("Version %(old)s restored as version %(new)s.", old=number, new=saved.version),
          "success")
    return redirect(url_for("notices.edit", key=key))


@bp.route("/notices/<key>/preview.pdf")
@login_required
def preview_pdf(key):
    """A letter template on a case as PDF, marked as a preview (nothing is sent)."""
    from notices.letters import letter_pdf, reference
    _staff_only()
    template = _template_or_404(key)
    if template.channel != "letter":
        abort(404)
    loan = Loan.query.filter_by(loan_no=(request.args.get("loan_no") or "").strip()).first()
    if loan is None:
        abort(404)
    if not (can_view_case(current_user, loan) or _may_edit()):
        deny(current_user, "case")
    number = request.args.get("version", type=int)
    row = ops.get_version(key, number) if number else ops.current_version(key)
    language = request.args.get("language") if request.args.get("language") in ops.LANGUAGES \
        else "zh_CN"
    subject, body, _values = ops.render_version(row, ops.preview_values(key, loan)[0],
                                                language)
    record("notice.previewed", actor=current_user, case_id=loan.id,
           data={"template": key, "version": row.version, "format": "pdf"})
    db.session.commit()
    pdf = letter_pdf(subject, body, ops.letter_recipient(loan.borrower_name,
                                                         ops.borrower_address(loan)),
                     clock.today(), language, loan.loan_no,
                     footer=reference(language, row.version), draft=True)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{key}-v{row.version}-preview.pdf"'})


@bp.route("/cases/<loan_no>/notices/<int:notice_id>.pdf")
@login_required
def notice_pdf(loan_no, notice_id):
    """A letter as it was sent, as PDF: whoever may see the case."""
    from notices.letters import letter_pdf, reference
    loan = Loan.query.filter_by(loan_no=loan_no).first()
    if loan is None:
        abort(404)
    if not can_view_case(current_user, loan):
        deny(current_user, "case")
    notice = db.session.get(SentNotice, notice_id)
    if notice is None or notice.loan_id != loan.id or notice.channel != "letter":
        abort(404)
    from accounts.models import utc
    day = utc(notice.sent_at).astimezone(BEIJING).date()
    pdf = letter_pdf(notice.subject, notice.body, notice.recipient, day, notice.language,
                     loan.loan_no, footer=reference(notice.language,
                                                    notice.template_version.version, notice.id))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{loan.loan_no}-{notice.template_key}-'
                               f'{notice.id}.pdf"'})
