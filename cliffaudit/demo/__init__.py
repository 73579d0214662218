"""The embedded demo: a synthetic listwise-ranking task with small, real checkpoints.

``cliffaudit demo build`` regenerates the data, tokenizer, teacher and warm-start
student on CPU; ``cliffaudit demo eval`` reports their strict parse rate and ranking
quality. The packaged artefacts are found through ``cliffaudit.demo.paths``.
"""
