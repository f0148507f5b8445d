"""Who spoke when: voice activity, embeddings and clustering, overlapped speech, enrolment,
audio-visual naming, one track per person, and the optional pyannote pipeline."""
