# Daihou: `make run` serves the app on SQLite with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
PORT ?= 5000
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: extract run serve worker test test-sqlite test-postgres setup translations browser bench clean

$(BIN)/activate: requirements.txt requirements-dev.txt
	@echo "== Python packages into $(VENV) (the first time takes a few minutes) =="
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(BIN)/activate

setup: $(BIN)/activate translations node_modules/.package-lock.json

# bpmn-js for the process studio, exactly as package-lock.json pins it.
node_modules/.package-lock.json: package.json package-lock.json
	@echo "== front-end packages from npm (package-lock.json) =="
	npm ci --no-audit --no-fund

# Simplified Chinese (zh_CN) lives in translations/zh_Hans_CN: Babel parses zh_CN as
# zh_Hans_CN and looks for the catalog under that name.
translations: $(BIN)/activate
	@echo "== translations (zh_CN, en) =="
	$(BIN)/pybabel compile -d translations

run: setup
	@echo "== database: applying migrations =="
	$(FLASK) db upgrade
	@echo "== processes: deploying bpmn/ (an unchanged file keeps its version) =="
	$(FLASK) bpmn deploy --comment "deployed by make run"
	@echo "== demo users and loans (only into an empty database) =="
	$(FLASK) demo load --if-empty
	@echo "== starting the web server and the worker; Ctrl-C stops both =="
	@bash scripts/run.sh $(PORT)

# Production: gunicorn with gunicorn.conf.py (BIND, WEB_WORKERS, WEB_THREADS from the
# environment). Run `make worker` beside it, on this or any machine sharing the database.
serve: setup
	$(FLASK) db upgrade
	$(FLASK) bpmn deploy --comment "deployed by make serve"
	$(BIN)/gunicorn --config gunicorn.conf.py

worker: setup
	$(FLASK) worker

browser:
	@bash scripts/install-chromium.sh

# Both databases at once (scripts/test-both.sh); `make test-sqlite` runs one.
test: setup browser
	@bash scripts/test-both.sh

# The suite runs with the machine's clock in another time zone (TZ), and on PostgreSQL with
# the session's default zone set to Beijing's (PGTZ): the lender's day and the stored times
# must not depend on either (workflows/clock.py, app.py's session settings).
test-sqlite:
	@echo "== test suite on SQLite =="
	env -u DATABASE_URL TZ=America/New_York $(BIN)/pytest -q tests

test-postgres:
	@echo "== test suite on PostgreSQL =="
	TZ=Pacific/Kiritimati PGTZ=Asia/Shanghai $(BIN)/pytest -q tests

# Every row of issue 12's table on SQLite and PostgreSQL; BENCH_SCALE=quick for the small run.
bench: setup
	$(BIN)/python -m bench.validation
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) instance/*.db

# Re-extract the messages after changing user-facing strings, then translate the zh_CN catalog.
extract: $(BIN)/activate
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_pgettext:1c,2 -o translations/messages.pot --no-location --sort-output --project Daihou accounts admin api audit calendars cases collection compliance extension_requests forms ledger management monitoring notifications studio workflows templates home search pii portfolio scoring scorecards guarantees notices app.py web.py web_assets.py formatting.py demo.py cli.py i18n.py
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete
