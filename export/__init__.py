"""Export a trained generator to ONNX and prove the export before it reaches models/.

Installed as `cgan_export` (pyproject.toml maps the name onto this folder: a top-level `export`
would be far too generic a name in site-packages). Run it as `cgan-train export --checkpoint
CHECKPOINT --out-dir models`, or `make export`.
"""
