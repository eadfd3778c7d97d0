"""One runner per format behind `runtimes.runners.base.Runner`, and the factory that picks one for an artifact.
Imports `runtimes.core` only."""
