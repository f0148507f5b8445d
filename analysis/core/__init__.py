"""What every stage shares: the frame grid and intervals, the events contract, model files."""
