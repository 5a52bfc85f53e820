# shopstream: the commands a person types. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JARS := .local/kafka/libs/.fetched
FILE ?= ../shared/data/amazon-beauty.txt
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup browser kafka-up kafka-down kafka-status topics worker test test-unit lint demo replay export bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))" || { echo "Python 3.11 is needed (found: $(PYTHON)); install it or run make PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

$(JARS): kafka-local/pom.xml | $(STAMP)
	$(BIN)/shopstream kafka fetch
	@touch $@

setup: $(STAMP) $(JARS) ## create .venv, install the project with dev extras, fetch Kafka's jars

browser: ## Debian's Chromium for the live page's browser test (installed when root)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: install Debian's chromium package (sudo apt-get install chromium)"; exit 1; fi; }

kafka-up: setup ## start the local Kafka broker (reuses one already running)
	$(BIN)/shopstream kafka up

kafka-down: setup ## stop the local Kafka broker this project started
	$(BIN)/shopstream kafka down

kafka-status: setup ## say what runs where
	$(BIN)/shopstream kafka status

topics: kafka-up ## create the topics (idempotent)
	$(BIN)/shopstream topics create

worker: topics ## run a stream worker in the foreground
	$(BIN)/shopstream worker

test: setup browser ## run the whole test suite (starts its own Kafka)
	$(BIN)/pytest

test-unit: setup ## run the tests that need nothing running
	$(BIN)/pytest tests/unit

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

demo: setup ## the main job: local Kafka, topics, worker, generated events, outputs printed
	$(BIN)/shopstream demo

.PHONY: live
live: setup ## serve the live page on http://127.0.0.1:6080/ (needs a running worker)
	$(BIN)/shopstream live

replay: topics ## load historical logs into the event topics (FILE=path, ARGS="--speed 10x ...")
	$(BIN)/shopstream replay $(FILE) $(ARGS)

export: setup ## train the default model and export it to ONNX
	$(BIN)/shopstream export train

bench: setup ## run the benchmarks in bench/ (figures to bench/results; ARGS="worker" for one)
	$(BIN)/shopstream bench $(ARGS)

clean: ## remove the local broker's data and the worker's tables (keeps .venv and jars)
	-$(BIN)/shopstream kafka down
	rm -rf .local/kafka-* .local/worker
