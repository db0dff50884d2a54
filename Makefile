# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test install lint format clean

$(VENV)/.installed: pyproject.toml
	@mkdir -p var
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip > var/install.log 2>&1
	@$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]" >> var/install.log 2>&1 \
		|| { tail -30 var/install.log; exit 1; }
	@touch $@

install: $(VENV)/.installed

run:
	@PORT=$(PORT) bash scripts/run.sh

# The first line says which database and broker the suite runs on.
test:
	@bash scripts/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/broker var/*.sqlite3 var/celerybeat-schedule*
