from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, validators


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), [validators.InputRequired(), validators.Length(max=80)])
    password = PasswordField(_l("Password"), [validators.InputRequired()])
