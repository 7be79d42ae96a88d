"""Adaptation and alignment training.

lapt        language-adaptive pre-training (LoRA + embedding rows / embeddings only / full; SynCS mixing)
transplant  Franken-Adapter: one model's tokenizer and embeddings on another's body
clo_data    English instruction pairs → cross-lingual CLO records with any translator
clo         the CLO loss and trainer
baselines   SFT and SFT+DPO on trl
instructions  an offline English instruction set (man pages, Bible), honest about how it is made
"""
