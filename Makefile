# amphi: the first two targets are the README's two commands.

CARGO ?= cargo
DEMO_ARGS ?=

.PHONY: demo test deps assets lint build release clean

## Run the embedded demo (SQLite in a temporary folder, the BBB simulator playing a lecture, a live
## webinar); prints the live page, two logins and the simulator. DEMO_ARGS="--duration 60" ends it.
demo: deps assets
	$(CARGO) run --quiet -- demo $(DEMO_ARGS)

## Format check, clippy with -D warnings, and the whole test suite.
test: deps assets lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast; \
	else \
		echo "cargo-nextest not found: running cargo test"; \
		$(CARGO) test --no-fail-fast; \
	fi

deps:
	@scripts/install-deps.sh

## The live page's player (hls.js through npm); skipped with a note when npm is missing.
assets:
	@scripts/web-assets.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

build: deps assets
	$(CARGO) build

release: deps assets
	$(CARGO) build --release

clean:
	$(CARGO) clean
