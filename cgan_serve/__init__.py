"""cgan_serve: the runtime as a service (`cgan-serve`): the Open Inference Protocol (KServe v2 REST,
which Triton's and KServe's clients speak) and plain PNG endpoints, with request batching, on one
machine or on Ray Serve. Needs the serve extra: pip install 'cgan-runtime[serve]'.
"""
