"""What every part of itermap uses: checks, backends, randomness, types."""
