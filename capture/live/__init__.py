"""Live capture: devices, the recorder, and recovery of recordings a crash interrupted."""
