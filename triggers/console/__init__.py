"""The operator's console: runs from Temporal visibility and one run drawn live as its DAG, with
approve/reject/retry/skip/pause/resume/cancel buttons (every action names who acts).

:func:`triggers.console.app.create_console` builds the app; `apeiro console` serves it and the
webhook gateway mounts it at /console/ with APEIRO_CONSOLE=1.
"""
