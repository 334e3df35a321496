"""Training side of cgan: data, networks, the training loop and its command line."""
