"""Export a trained generator to ONNX and prove the export before it reaches models/.

Run from the repository root: `python -m export --checkpoint CHECKPOINT --out-dir models`.
This package is not installed (a top-level `export` module would be too generic a name).
"""
