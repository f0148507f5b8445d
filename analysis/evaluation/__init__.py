"""Measuring Playback against known answers: metrics, the one event matcher, and the composers
that build test sessions from ../shared. Used by tests and benchmarks, never by the product."""
