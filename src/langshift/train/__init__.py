"""Adaptation and alignment training.

config      TrainingConfig (the fields every trainer shares), TrainResult and the front doors' common part
lapt        language-adaptive pre-training (LoRA + embedding rows / embeddings only / full; SynCS mixing)
mimic       new embedding rows trained so the model reads target text as the original did (mimic_data: the
            matched positions; mimic_loss: the losses)
transplant  Franken-Adapter: one model's tokenizer and embeddings on another's body
clo_data    English instruction pairs → cross-lingual CLO records with any translator
clo         the CLO trainer (clo_loss: the loss; clo_batches: examples, batches, reference log-probs)
baselines   SFT and SFT+DPO on trl
instructions  an offline English instruction set (man pages, Bible), honest about how it is made
"""
