"""The tidy table (columns variant, step, layer, stage, unit, stat, value): the bounded History of snapshots,
the encoder and writer behind `record` and the page's export, and the replay of a recorded table.
Uploaded files are untrusted: they are read and checked in one place before anything is rebuilt from them.
"""
