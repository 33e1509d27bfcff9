# Two commands set everything up on a fresh machine:
#   make demo   trains the default model and prints the result
#   make test   runs the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean figures

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,fast]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/backprop train

test: $(STAMP)
	$(BIN)/ruff check backprop tests examples bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check backprop tests examples bench
	$(BIN)/ruff format --check backprop tests examples bench

figures: $(STAMP)
	$(BIN)/backprop figures --out docs/img/gallery

clean:
	rm -rf $(VENV) build *.egg-info
