from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectMultipleField, StringField, validators
from wtforms.widgets import CheckboxInput, ListWidget

from accounts.operations import TOKEN_DAYS, TOKEN_MAX_DAYS
from accounts.passwords import MIN_LENGTH
from accounts.roles import ROLES

REQUIRED = _l("This field is required.")


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), [validators.InputRequired(), validators.Length(max=80)])
    password = PasswordField(_l("Password"), [validators.InputRequired()])


def _new_password_fields(label):
    password = PasswordField(label, [validators.InputRequired(REQUIRED)],
                             description=_l("At least %(min)d characters, not a common password "
                                            "and not containing the user name.", min=MIN_LENGTH))
    confirm = PasswordField(_l("Repeat the new password"), [
        validators.InputRequired(REQUIRED),
        validators.EqualTo("new_password", _l("The two passwords differ."))])
    return password, confirm


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), [validators.InputRequired(REQUIRED)])
    new_password, confirm = _new_password_fields(_l("New password"))


class ResetPasswordForm(FlaskForm):
    new_password, confirm = _new_password_fields(_l("New password"))


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), [validators.InputRequired(REQUIRED),
                                          validators.Length(max=80)],
                       description=_l("What uses it, e.g. the core banking integration."))
    days = IntegerField(_l("Valid for (days)"), [
        validators.InputRequired(REQUIRED),
        validators.NumberRange(1, TOKEN_MAX_DAYS, _l("Between %(min)s and %(max)s days."))],
        default=TOKEN_DAYS)


class RoleChoices(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):
        if any(value not in ROLES for value in self.data or []):
            raise validators.ValidationError(_l("Unknown role."))


def _role_choices():
    return [(key, label) for key, label in ROLES.items()]


class UserEditForm(FlaskForm):
    display_name = StringField(_l("Display name"), [validators.Length(max=120)])
    roles = RoleChoices(_l("Roles"), choices=_role_choices(),
                        description=_l("Granting the administrator role needs the approval of a "
                                       "second administrator."))


class UserCreateForm(UserEditForm):
    username = StringField(_l("User name"), [validators.InputRequired(REQUIRED),
                                             validators.Length(max=80),
                                             validators.Regexp(r"^[A-Za-z0-9_.@-]+$", message=_l(
                                                 "Letters, digits and . _ @ - only."))])
    new_password, confirm = _new_password_fields(_l("Initial password"))
