# Kizuna: `make run` serves the app with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Kizuna needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m server dev

# Test files are spread over TEST_WORKERS processes (pytest-xdist), each with its own database;
# TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m server fetch-meili
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check server tests bench

# Each scenario prints its figures beside their targets and exits 1 when one is missed; every
# scenario runs either way and `make bench` fails at the end if any missed. BENCH_ARGS go to the
# search scenario (e.g. BENCH_ARGS="--corpus large" for the 100,000-document index). The desk
# scenario defaults to SQLite with 100,000 tickets; DESK_BENCH_ARGS="--db postgres --size large"
# for 1,000,000 tickets.
BENCH_SCENARIOS = "bench $(BENCH_ARGS)" "bench.forum" "bench.realtime" "bench.desk $(DESK_BENCH_ARGS)" \
	"bench.inbound" "bench.chat"
bench: $(STAMP)
	$(BIN)/python -m server fetch-meili
	@missed=""; for scenario in $(BENCH_SCENARIOS); do \
		echo "=== python -m $$scenario"; \
		$(BIN)/python -m $$scenario || missed="$$missed $$scenario;"; \
	done; \
	if [ -n "$$missed" ]; then echo "make bench: targets missed or failed in:$$missed"; exit 1; fi

clean:
	rm -rf $(VENV) var

# Re-extract UI strings (server/**.py, templates/) into the .pot and merge them into the ja catalog;
# then translate the new or fuzzy entries in server/locales/ja/LC_MESSAGES/messages.po.
.PHONY: i18n
i18n: $(STAMP)
	$(BIN)/pybabel extract -F server/locales/babel.cfg -o server/locales/messages.pot \
		--project=Kizuna --copyright-holder=Lumenfold --sort-by-file .
	test -f server/locales/ja/LC_MESSAGES/messages.po || \
		$(BIN)/pybabel init -i server/locales/messages.pot -d server/locales -l ja
	$(BIN)/pybabel update -i server/locales/messages.pot -d server/locales -l ja --ignore-obsolete
