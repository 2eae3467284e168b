"""The GPU checks for a lent GPU machine: ``run.sh`` there, ``fetch_wheels.sh`` here first."""
