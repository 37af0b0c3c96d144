//! Scaffold: the main operator flow in Chromium (this session).
