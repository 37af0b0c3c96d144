//! Scaffold: the accounts, tokens and audit pages in Chromium (this session).
