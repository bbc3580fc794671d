# slmc: `make demo` and `make test` set everything up on a fresh Debian/Ubuntu machine.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
SLMC := $(VENV)/bin/slmc
JOBS ?= 2
APT_TOOLCHAINS := gcc-arm-none-eabi picolibc-arm-none-eabi gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf \
                  qemu-system-arm qemu-system-misc chromium

.PHONY: setup toolchains demo test test-fast fuzz bench train-default train-moe clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

# Cross compilers, picolibc and QEMU for the MCU targets, chromium to render the report page in tests
# (Debian packages, no recommends: about 3 GB, not 5).
toolchains:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v riscv64-unknown-elf-gcc >/dev/null \
	    && command -v qemu-system-arm >/dev/null && command -v qemu-system-riscv32 >/dev/null \
	    && command -v chromium >/dev/null \
	    && [ -f /usr/lib/picolibc/arm-none-eabi/picolibc.specs -o -d /usr/lib/picolibc/arm-none-eabi ]; then \
	  echo "toolchains: present"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends $(APT_TOOLCHAINS); \
	fi

demo: setup
	$(VPY) -m slmc.demo

test: setup toolchains
	$(VPY) -m pytest -q -n $(JOBS) tests

test-fast: setup
	$(VPY) -m pytest -q -n $(JOBS) -m "not slow" tests

# 10,000 hostile inputs (model files of every format, ONNX graphs, CLI options): each must end in exit 0 with a
# complete output or a one-line error with exit 2 (tests/fuzz/run.py; FUZZ_CASES, FUZZ_SEED to vary it).
FUZZ_CASES ?= 10000
FUZZ_SEED ?= 0
fuzz: setup toolchains
	$(VPY) tests/fuzz/run.py --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --jobs $(JOBS) --json fuzz-summary.json

bench: setup
	$(VPY) benchmarks/run.py

train-default: setup
	$(VPY) -m slmc.train.train_default --out models/default

# the mixture-of-experts model of issue 18 (a HuggingFace Mixtral folder) and its expert predictor
train-moe: setup
	$(VPY) -m slmc.train.train_moe --out models/moe

clean:
	rm -rf out build benchmarks/work
