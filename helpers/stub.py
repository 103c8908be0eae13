"""The line that stands in a student copy in place of each solution: written there by
tools/student.py, recognised by the exercise checks (helpers/checks/core.py). It imports nothing,
so that the git filter (tools.student strip) starts without torch."""

STUB = "Exercise: replace this line with your code (the hint is just above)"
