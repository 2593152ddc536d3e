"""The supervisor: trigger intake, lost workers and their recovery, checkpoints."""
