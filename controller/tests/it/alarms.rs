//! Scaffold: operator alarms and their webhook (this session).
