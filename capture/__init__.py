"""How a session gets into Playback: the session store, media probing and import."""
