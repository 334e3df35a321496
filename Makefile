# cgan: train -> export (proven) -> sample. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

# Training data: the offline copy beside the project when there is one, else torchvision downloads it.
DATA_DIR ?= $(wildcard ../shared/data/mnist)
DATA_FLAG := $(if $(DATA_DIR),--data-dir $(DATA_DIR))
RUN_DIR ?= runs/conv
# The recipes are named in cgan_train/recipes.py (the shipped model's is the default); add flags to
# TRAIN_FLAGS to override single values.
TRAIN_FLAGS ?= --recipe shipped --seed 0
SEED_FLAGS ?= --recipe seed --seed 0
# What the runtime bundles: int8 once `make evaluate` has shown it clears the bar, else fp32;
# BUNDLE=fp32 bundles the fp32 export whatever the evaluation says.
BUNDLE ?= int8
# The GPU build of onnxruntime, which replaces the CPU one (docs/how-it-works.md#cuda); the tests
# install it in a venv of their own to show what --device cuda says on a machine without a GPU.
ORT_GPU ?= onnxruntime-gpu==1.31.1
# What `make export` ships: your finished run if there is one, else the committed generator
# weights, else train first.
CHECKPOINT ?= $(firstword $(wildcard $(RUN_DIR)/checkpoint.pt models/cgan_generator.pt) $(RUN_DIR)/checkpoint.pt)

.PHONY: help install test test-fast faults export bundle triton train train-seed evaluate evaluate-quick evaluate-model evaluate-seed judge judges real-baselines ablation bench bench-serve portability pictures web wheel lint clean

help:
	@echo "make install     development environment in $(VENV) (runtime + train + serve + ray + parquet + dev extras)"
	@echo "make test        the whole test suite, offline, on every core"
	@echo "make test-fast   the suite without the tests marked slow: the edit loop"
	@echo "make lint        ruff check and ruff format --check (CI runs it)"
	@echo "make faults      only the fault-injection tests: mistakes, interruptions, corrupt files"
	@echo "make export      train if needed -> ONNX -> checker + parity -> int8 model -> models/ -> bundle"
	@echo "make triton      a Triton model repository of the fp32 export and the int8 model -> triton-repository/"
	@echo "make bundle      the runtime's model: int8 once make evaluate clears its bar, else fp32 (BUNDLE=fp32)"
	@echo "make train       train (or resume) $(RUN_DIR) with the shipped recipe"
	@echo "make train-seed  train (or resume) runs/seed with the seed design, the baseline"
	@echo "make evaluate    the fp32 export and the int8 model scored by every judge and CAS recipe, beside real"
	@echo "                 MNIST, with their spreads -> models/evaluation*.json, the card, the bundle (about 15 minutes)"
	@echo "make evaluate-quick  one model, one draw, one seed per CAS recipe (a few minutes; the edit loop):"
	@echo "                 make evaluate-quick MODEL=runs/x/models/cgan_generator.onnx REPORT=/tmp/x.json"
	@echo "make evaluate-model  one model, the full evaluation: make evaluate-model MODEL=... REPORT=..."
	@echo "make evaluate-seed  the seed design (make train-seed) scored the same way -> models/evaluation_seed.json"
	@echo "make ablation   the seed's discriminator ideas, each at the same CPU budget -> docs/ablation.md"
	@echo "make judge       retrain the primary judge (an MNIST classifier evaluate uses) -> models/judge.pt"
	@echo "make judges      retrain the other judges -> models/judges/, and record every judge's SHA-256"
	@echo "                 -> models/judges.json (a few minutes)"
	@echo "make real-baselines  real MNIST under the evaluation's protocols (every judge's ceiling, every CAS"
	@echo "                 recipe and seed trained on real images) -> models/real_baselines.json"
	@echo "make bench       the runtime against PyTorch: start-up, speed, memory, size, data sets"
	@echo "                 -> docs/benchmarks.md"
	@echo "make bench-serve cgan-serve with and without batching, on Ray Serve, beside MLServer and Triton,"
	@echo "                 under load, and its memory over 5 minutes -> docs/serving.md (about 15 minutes; needs wrk)"
	@echo "make portability the bundled int8 model against fp32 on other CPUs under qemu (x86-64, ARM64), and"
	@echo "                 the export with other x86-64 CPUs' kernels forced -> docs/portability.md"
	@echo "make web         the browser page as a static site (onnxruntime-web, the bundled model) -> web/dist/"
	@echo "make pictures    the README's pictures: --text drawn by the bundled model, the page in Chromium -> docs/pictures/"
	@echo "make wheel       dist/cgan_runtime-*.whl, the torch-free runtime with the bundled model"

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[train,serve,ray,parquet,dev]'
	# The page's one dependency, onnxruntime-web, exactly as web/package-lock.json has it.
	npm ci --prefix web --no-audit --no-fund
	# The runtime's and the server's dependencies as wheels, and onnxruntime-gpu, so that the tests
	# of the edge install and of the GPU package on this CPU install offline.
	$(BIN)/pip wheel --no-build-isolation --wheel-dir .wheelhouse '.[serve]'
	$(BIN)/pip download --dest .wheelhouse $(ORT_GPU)
	rm -f .wheelhouse/cgan_runtime-*.whl

# loadgroup: the tests of one xdist_group share a worker (and what it has computed).
test:
	$(BIN)/pytest -n auto --dist loadgroup

test-fast:
	$(BIN)/pytest -n auto --dist loadgroup -m "not slow"

faults:
	$(BIN)/pytest -m faults

LINTED := cgan_train cgan_runtime cgan_serve export tests benchmarks
lint:
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	for file in web/build.mjs web/src/*.js; do node --check $$file || exit 1; done

export: $(CHECKPOINT)
	$(BIN)/cgan-train export --checkpoint $(CHECKPOINT) --out-dir models
	$(PY) -m cgan_export.bundle --precision $(BUNDLE)

bundle:
	$(PY) -m cgan_export.bundle --precision $(BUNDLE)

triton:
	$(BIN)/cgan-train triton-repository --models models --out triton-repository --force

$(RUN_DIR)/checkpoint.pt:
	$(BIN)/cgan-train train $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --out $(RUN_DIR) $(TRAIN_FLAGS)

train:
	$(BIN)/cgan-train train $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --out $(RUN_DIR) $(TRAIN_FLAGS) \
		$(if $(wildcard $(RUN_DIR)/checkpoint.pt),--resume)

train-seed:
	$(BIN)/cgan-train train $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --out runs/seed $(SEED_FLAGS) \
		$(if $(wildcard runs/seed/checkpoint.pt),--resume)

# Both files: the fp32 export, then the int8 model the runtime bundles, which must clear the
# bar against it (accuracy within 0.3 points, FID within 20%, no instrument worse beyond the
# spread). Real MNIST's figures come from models/real_baselines.json (make real-baselines).
evaluate:
	@start=$$(date +%s); \
	$(BIN)/cgan-train evaluate models/cgan_generator.onnx $(DATA_FLAG) --json models/evaluation.json \
	&& $(BIN)/cgan-train evaluate models/cgan_generator_int8.onnx $(DATA_FLAG) \
		--json models/evaluation_int8.json --baseline models/evaluation.json; \
	status=$$?; echo "make evaluate: both files evaluated in $$(( $$(date +%s) - start )) s"; exit $$status
	$(PY) -m cgan_export.model_card models
	$(PY) -m cgan_export.bundle --precision $(BUNDLE)

# Any ONNX generator: MODEL=runs/x/models/cgan_generator.onnx REPORT=/tmp/x.json (by default the
# report goes beside the model). Quick: one draw of samples and one seed per CAS recipe (the full
# evaluation's first: its figures are the full report's draw 0 and seed 0); too few for the rule
# of docs/how-it-works.md (Judging a recipe), which evaluate-model's reports are for.
MODEL ?= models/cgan_generator.onnx
evaluate-quick: REPORT ?= $(dir $(MODEL))evaluation_quick.json
evaluate-quick:
	$(BIN)/cgan-train evaluate $(MODEL) $(DATA_FLAG) --quick --json $(REPORT)

evaluate-model: REPORT ?= $(dir $(MODEL))evaluation_full.json
evaluate-model:
	$(BIN)/cgan-train evaluate $(MODEL) $(DATA_FLAG) --json $(REPORT)

# The seed design scored as the shipped model is (its CAS beside the same real-trained figures):
# the README's baseline column.
evaluate-seed: runs/seed/checkpoint.pt
	$(BIN)/cgan-train export --checkpoint runs/seed/checkpoint.pt --out-dir runs/seed/models
	$(BIN)/cgan-train evaluate runs/seed/models/cgan_generator.onnx $(DATA_FLAG) \
		--json models/evaluation_seed.json

runs/seed/checkpoint.pt:
	$(MAKE) train-seed

# The seed's discriminator ideas (the wrong-label term, two networks) at an equal CPU budget per row
# -> docs/ablation.md. Ten rows of eight minutes of training each, on one thread.
ablation:
	$(PY) benchmarks/ablation.py $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --threads 1 --budget-seconds 480

# The primary judge; its new SHA-256 is recorded in models/judges.json (evaluate refuses a judge
# file whose digest is not the one recorded).
judge:
	$(BIN)/cgan-train judge $(DATA_FLAG) --out models/judge.pt --epochs 6 --seed 0
	$(PY) -m cgan_train.judges --record-only --models models

# The other judges (cgan_train/judges.py: a CNN of 5x5 kernels, an MLP on the pixels), and every
# judge's SHA-256 -> models/judges.json.
judges:
	$(PY) -m cgan_train.judges $(DATA_FLAG) --models models

# Real MNIST under the evaluation's protocols (each judge's ceiling, draw by draw; each CAS recipe
# trained on real images, seed by seed): model-independent, computed once, reused by evaluate.
real-baselines:
	$(PY) -m cgan_train.baselines $(DATA_FLAG) --out models/real_baselines.json

pictures:
	mkdir -p docs/pictures
	$(BIN)/cgan-run --text 2026 --style 1 --count 3 --force --out docs/pictures/text_2026.png
	$(BIN)/cgan-run --text 2026 --style 1 --count 3 --invert --force --out docs/pictures/text_2026_inverted.png
	$(PY) -m benchmarks.page_screenshot --out docs/pictures/page.png

# The page's files, onnxruntime-web's wasm build (from web/node_modules: make install) and the bundled
# model, as a static site: cgan-serve serves it at /, any host can (docs/browser.md).
web:
	node web/build.mjs --out web/dist

bench: wheel
	$(PY) -m benchmarks.bench $(if $(DATA_DIR),--data-dir $(DATA_DIR)) --report docs/benchmarks.md

# The peers (MLServer, Triton) get venvs of their own in .bench/, made on the first run.
bench-serve:
	$(PY) benchmarks/bench_serve.py --report docs/serving.md

# ARM64 runs in a Debian arm64 root under proot and qemu (made once, in .portability/); without
# debootstrap, proot or qemu-user-static the report says ARM64 was not run.
portability:
	-PYTHON=$(PY) benchmarks/arm64_root.sh .portability/arm64-root
	$(PY) benchmarks/portability.py --arm64-root .portability/arm64-root

wheel:
	rm -rf build dist
	$(BIN)/pip wheel --no-deps --no-build-isolation --wheel-dir dist .
	@ls -l dist/*.whl

clean:
	rm -rf build dist .pytest_cache *.egg-info
