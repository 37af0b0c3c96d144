//! Scaffold: the user guide screenshots (this session).
