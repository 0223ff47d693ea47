"""Classroom grading (``stn-course grade``): the grader, its sandbox and its result formats."""
