"""Live path: audio sources -> ring buffer -> streaming features -> ONNX engine -> pose out.

Never imports torch (tests/test_architecture.py checks it). Submodules are imported explicitly
(``from transflower.realtime.audio_sources import open_default_source``); importing this package imports nothing
heavy, and sounddevice/PortAudio is only loaded when a device is actually used.
"""
