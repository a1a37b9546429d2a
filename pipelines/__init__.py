"""Pipeline wiring. ``configs/*.yaml`` say what to train; ``stacks/`` says where."""
