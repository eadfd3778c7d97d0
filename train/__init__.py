"""Training side: the level-scaled model, data, the multi-level trainer, checkpoints and evaluation."""

# torch.compile modes the trainer accepts ("reduce-overhead" replays each step as CUDA graphs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")
LEVEL_WEIGHTINGS = ("strength", "none", "log")
