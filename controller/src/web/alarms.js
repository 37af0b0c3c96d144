// Scaffold: the dashboard's operator alarms, replaced in this session's work.
export function startAlarms() {}
