//! Scaffold: township accounts on the dashboard, week plan and directory export (this session).
